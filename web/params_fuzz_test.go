package web

import (
	"errors"
	"net/http"
	"testing"
)

// FuzzDecodeParams: any body gives parameters or a 400 with a message,
// never a panic.
func FuzzDecodeParams(f *testing.F) {
	for _, s := range []string{`{"type":"cpu","pid":[1,2]}`, `{"pid":"1, 2"}`, `{"tid":3,"duration":5}`, `{"type":1}`, `null`, `{"hz":1e99}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := decodeParams(body)
		var he *httpError
		if err != nil && (!errors.As(err, &he) || he.status != http.StatusBadRequest || he.msg == "") {
			t.Fatalf("error %v is not a 400 with a message", err)
		}
	})
}
