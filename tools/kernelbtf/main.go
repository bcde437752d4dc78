// Command kernelbtf extracts the kernel's BTF from an uncompressed kernel
// image (arm64's Image, Debian's /boot/vmlinuz-*-arm64) into a raw BTF file
// that `bpftool btf dump file F format c` turns into a vmlinux.h. The image
// is not an ELF file: the .BTF section is found by its header (magic 0xeB9F,
// version 1, a 24-byte header) and accepted only when the BTF parses and
// describes struct task_struct. scripts/vmlinux-arm64.sh runs it.
//
//	go run ./tools/kernelbtf IMAGE OUT.btf
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf/btf"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kernelbtf IMAGE OUT.btf")
		os.Exit(2)
	}
	img, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kernelbtf:", err)
		os.Exit(1)
	}
	blob, err := find(img)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kernelbtf: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[2], blob, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "kernelbtf:", err)
		os.Exit(1)
	}
}

// find returns the first BTF blob in img that parses and has task_struct.
func find(img []byte) ([]byte, error) {
	magic := []byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0} // magic, version 1, flags 0, hdr_len 24
	var last error = errors.New("no BTF header found (is the image compressed? gunzip it first)")
	for off := 0; ; off++ {
		i := bytes.Index(img[off:], magic)
		if i < 0 {
			return nil, last
		}
		off += i
		if len(img)-off < 24 {
			return nil, last
		}
		h := img[off:]
		typeOff, typeLen := binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
		strOff, strLen := binary.LittleEndian.Uint32(h[16:]), binary.LittleEndian.Uint32(h[20:])
		end := 24 + uint64(max(typeOff+typeLen, strOff+strLen))
		if uint64(typeOff)+uint64(typeLen) > uint64(len(h)) || uint64(strOff)+uint64(strLen) > uint64(len(h)) || end > uint64(len(h)) {
			last = fmt.Errorf("BTF header at %#x: sections run past the image", off)
			continue
		}
		blob := h[:end]
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(blob))
		if err != nil {
			last = fmt.Errorf("BTF at %#x: %w", off, err)
			continue
		}
		var ts *btf.Struct
		if err := spec.TypeByName("task_struct", &ts); err != nil {
			last = fmt.Errorf("BTF at %#x has no task_struct: %w", off, err)
			continue
		}
		return blob, nil
	}
}
