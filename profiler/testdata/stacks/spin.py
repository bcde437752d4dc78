# outer -> middle -> inner in Python, run with -X perf (3.12+): each Python
# frame enters the interpreter through a trampoline named in
# /tmp/perf-PID.map, between CPython's frames built without frame pointers.
# Prints the rounds done when its time is up.
import sys
import time


def inner(n):
    s = 0
    for i in range(n):
        s += i * i % 7
    return s


def middle(n):
    return inner(n) + 1


def outer(n):
    return middle(n) + 1


def main():
    end = time.time() + (float(sys.argv[1]) if len(sys.argv) > 1 else 60)
    rounds = sink = 0
    while time.time() < end:
        sink += outer(20000)
        rounds += 1
    print(rounds + (sink == 42))


main()
