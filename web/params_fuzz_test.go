package web

import (
	"errors"
	"net/http"
	"net/url"
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

// FuzzFormParams: any form body gives parameters or a 400 with a message.
func FuzzFormParams(f *testing.F) {
	for _, s := range []string{"type=cpu&target=pid&pid=1,2", "target=comm&comm=+app+", "hz=0x10", "secs=3", "target=pod", "min_block=1us&max_block=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		_, err = formParams(v)
		var he *httpError
		if err != nil && (!errors.As(err, &he) || he.status != http.StatusBadRequest || he.msg == "") {
			t.Fatalf("error %v is not a 400 with a message", err)
		}
	})
}
