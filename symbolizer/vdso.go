package symbolizer

import (
	"bytes"
	"os"
)

// vdsoModule loads the vDSO image of this process: the kernel maps the same
// image into every (64-bit) process, so one copy serves all.
func (s *Symbolizer) vdsoModule() *module {
	s.vdsoOnce.Do(func() {
		img, err := readVDSO()
		if err != nil {
			s.log.Debug("vdso", "err", err)
			s.vdso = &module{err: err}
			return
		}
		s.vdsoImage = img
		s.vdso = s.loadModule(bytes.NewReader(img), debugLocator{label: "[vdso]"})
	})
	return s.vdso
}

func readVDSO() ([]byte, error) {
	mb, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	maps, err := parseMaps(bytes.NewReader(mb))
	if err != nil {
		return nil, err
	}
	for _, m := range maps {
		if m.path != "[vdso]" {
			continue
		}
		f, err := os.Open("/proc/self/mem")
		if err != nil {
			return nil, err
		}
		defer f.Close()
		img := make([]byte, m.end-m.start)
		if _, err := f.ReadAt(img, int64(m.start)); err != nil {
			return nil, err
		}
		return img, nil
	}
	return nil, os.ErrNotExist
}
