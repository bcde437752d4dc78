// main.alpha -> main.beta -> main.leaf: the Go compiler gives leaf, a
// function that calls nothing, no frame, so frame pointers lose beta. Go
// binaries have no .eh_frame: their CFI is in .debug_frame. Prints the
// rounds done when its time is up (a work rate for benchmarks).
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

var sink int

//go:noinline
func leaf(n int) {
	for i := 0; i < n; i++ {
		sink += i * i
	}
}

//go:noinline
func beta() { leaf(1000000) }

//go:noinline
func alpha() { beta() }

func main() {
	secs := 60
	if len(os.Args) > 1 {
		secs, _ = strconv.Atoi(os.Args[1])
	}
	end := time.Now().Add(time.Duration(secs) * time.Second)
	rounds := 0
	for time.Now().Before(end) {
		alpha()
		rounds++
	}
	fmt.Println(rounds)
}
