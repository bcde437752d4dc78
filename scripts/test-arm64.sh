#!/usr/bin/env bash
# What CI checks of the arm64 build (make test-arm64): scorch cross-builds
# and vets for arm64, and the unit tests that need no BPF, ptrace or running
# of the binaries they build run as arm64 code under qemu-user
# (qemu-aarch64-static, Debian's qemu-user-static). The BPF tests skip there
# by themselves (testutil.RequireRoot: qemu-user has no bpf system call);
# the tests listed in SKIP exec programs they build for the GOARCH (no
# binfmt_misc here), ptrace them, or read /proc of the emulator, which
# qemu-user does not emulate for other processes; HEAVY are the few that take
# minutes under emulation (table checks over all of libc, decompression
# bombs, the largest render) and run natively in test-go. The arm64 unwinding
# itself is tested natively too (unwind's arm64 fixtures, snapshots taken
# under qemu's gdb stub).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
qemu=$(command -v qemu-aarch64-static || true)
if [[ -z $qemu ]]; then
	echo "qemu-aarch64-static is not installed (Debian package qemu-user-static: make deps)" >&2
	exit 1
fi
echo "arm64: go vet"
GOARCH=arm64 $GO vet ./...
echo "arm64: go build ./cmd/scorch"
GOARCH=arm64 CGO_ENABLED=0 $GO build -o /dev/null ./cmd/scorch
NATIVE='TestOpenInRoot|TestOpenForeign|TestNativeInlinedFrames|TestNativeFixtures|TestStrippedGo|TestLines|TestRecordedProcessAfterExit|TestGoCompactWalk|TestLiveWorkloads|TestRestartAfterKill'
HEAVY='TestCompactAgrees|TestImportBombs|TestLargeRenderSize|TestCompactCorrupted'
SKIP="^($NATIVE|$HEAVY)\$"
pkgs=(./capture/... ./calltree/... ./flamegraph/... ./heatmap/... ./formats/... ./symbolizer/... ./unwind/... ./web/...)
echo "arm64: go test under $qemu: ${pkgs[*]}"
GOARCH=arm64 $GO test -exec "$qemu" -count=1 -timeout 20m -skip "$SKIP" "${pkgs[@]}"
