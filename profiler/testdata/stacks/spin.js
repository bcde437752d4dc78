// outer -> middle -> inner in JavaScript, run with --perf-basic-prof (names
// of JIT code in /tmp/perf-PID.map), --interpreted-frames-native-stack
// (interpreted functions get a named copy of the interpreter's entry) and
// --no-turbo-inlining (the three stay three frames once optimized). Prints
// the rounds done when its time is up.
'use strict';
function inner(n) {
	let s = 0;
	for (let i = 0; i < n; i++) s += (i * i) % 7;
	return s;
}
function middle(n) {
	return inner(n) + 1;
}
function outer(n) {
	return middle(n) + 1;
}
const end = Date.now() + Number(process.argv[2] || 60) * 1000;
let rounds = 0, sink = 0;
while (Date.now() < end) {
	sink += outer(20000);
	rounds++;
}
console.log(String(rounds + (sink === 42 ? 1 : 0)));
