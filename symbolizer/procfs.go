package symbolizer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// mapping is one line of /proc/PID/maps.
type mapping struct {
	start, end uint64
	perms      string // "r-xp"
	offset     uint64
	devMajor   uint32
	devMinor   uint32
	inode      uint64
	path       string // "" for anonymous, "[vdso]", "/usr/lib/...", with " (deleted)" removed
	deleted    bool
}

func (m *mapping) exec() bool { return len(m.perms) >= 3 && m.perms[2] == 'x' }

// parseMaps reads the /proc/PID/maps format. Malformed lines are skipped;
// at most maxMappings are kept so hostile input cannot grow memory unbounded.
func parseMaps(r io.Reader) ([]mapping, error) {
	const maxMappings = 1 << 20
	var out []mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for sc.Scan() && len(out) < maxMappings {
		if m, ok := parseMapsLine(sc.Bytes()); ok {
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read maps: %w", err)
	}
	return out, nil
}

// parseMapsLine parses "start-end perms offset major:minor inode   path".
func parseMapsLine(line []byte) (mapping, bool) {
	var m mapping
	fields := make([][]byte, 0, 6)
	rest := line
	for len(fields) < 5 {
		rest = bytes.TrimLeft(rest, " ")
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			if len(rest) == 0 {
				return m, false
			}
			fields = append(fields, rest)
			rest = nil
			continue
		}
		fields = append(fields, rest[:i])
		rest = rest[i+1:]
	}
	if len(fields) < 5 {
		return m, false
	}
	dash := bytes.IndexByte(fields[0], '-')
	if dash < 0 {
		return m, false
	}
	var err error
	if m.start, err = strconv.ParseUint(string(fields[0][:dash]), 16, 64); err != nil {
		return m, false
	}
	if m.end, err = strconv.ParseUint(string(fields[0][dash+1:]), 16, 64); err != nil || m.end <= m.start {
		return m, false
	}
	if len(fields[1]) != 4 {
		return m, false
	}
	m.perms = string(fields[1])
	if m.offset, err = strconv.ParseUint(string(fields[2]), 16, 64); err != nil {
		return m, false
	}
	colon := bytes.IndexByte(fields[3], ':')
	if colon < 0 {
		return m, false
	}
	maj, err1 := strconv.ParseUint(string(fields[3][:colon]), 16, 32)
	minor, err2 := strconv.ParseUint(string(fields[3][colon+1:]), 16, 32)
	if err1 != nil || err2 != nil {
		return m, false
	}
	m.devMajor, m.devMinor = uint32(maj), uint32(minor)
	if m.inode, err = strconv.ParseUint(string(fields[4]), 10, 64); err != nil {
		return m, false
	}
	path := string(bytes.TrimLeft(rest, " "))
	if p, ok := strings.CutSuffix(path, " (deleted)"); ok {
		path, m.deleted = p, true
	}
	m.path = path
	return m, true
}

// procStatus holds the fields of /proc/PID/status the symbolizer needs.
type procStatus struct {
	name  string
	tgid  int
	uid   int // real uid
	euid  int
	nspid int // innermost namespace pid (the last NSpid field)
}

// parseStatus reads /proc/PID/status.
func parseStatus(r io.Reader) (procStatus, error) {
	st := procStatus{tgid: -1, uid: -1, euid: -1, nspid: -1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		switch key {
		case "Name":
			st.name = strings.TrimSpace(val)
		case "Tgid":
			st.tgid, _ = strconv.Atoi(f[0])
		case "Uid":
			st.uid, _ = strconv.Atoi(f[0])
			if len(f) > 1 {
				st.euid, _ = strconv.Atoi(f[1])
			}
		case "NSpid":
			st.nspid, _ = strconv.Atoi(f[len(f)-1])
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read status: %w", err)
	}
	if st.tgid < 0 && st.uid < 0 {
		return st, fmt.Errorf("status: no Tgid or Uid line")
	}
	return st, nil
}
