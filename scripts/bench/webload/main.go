// Command webload is the load generator of scripts/bench-web.sh: C clients
// fetch the given paths round robin for a bounded time and it prints
// requests/s, p50 and p99 latency and the error count.
//
//	go run ./scripts/bench/webload -base http://127.0.0.1:7070 -c 50 -d 30s /api/captures/ID/folded ...
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	base := flag.String("base", "http://127.0.0.1:7070", "server URL")
	clients := flag.Int("c", 50, "concurrent clients")
	dur := flag.Duration("d", 30*time.Second, "how long to run")
	unique := flag.Bool("unique", false, "add a unique title= to every request, so no answer comes from the render cache")
	uniqueFrac := flag.Float64("unique-frac", 0, "add a unique title= to this share of the requests (0..1)")
	label := flag.String("label", "load", "name printed with the figures")
	flag.Parse()
	paths := flag.Args()
	if len(paths) == 0 || *clients < 1 || *dur <= 0 {
		fmt.Fprintln(os.Stderr, "usage: webload [-base URL] [-c N] [-d DURATION] [-unique] PATH...")
		os.Exit(2)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients}
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var (
		mu     sync.Mutex
		lat    []time.Duration
		errs   atomic.Int64
		shed   atomic.Int64
		seq    atomic.Int64
		firstE atomic.Value
		wg     sync.WaitGroup
	)
	start := time.Now()
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for ctx.Err() == nil {
				n := seq.Add(1)
				p := paths[int(n)%len(paths)]
				if *unique || (*uniqueFrac > 0 && float64(n%100) < *uniqueFrac*100) {
					sep := "?"
					if strings.Contains(p, "?") {
						sep = "&"
					}
					p += fmt.Sprintf("%stitle=t%d", sep, n)
				}
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", *base+p, nil)
				// Ask for gzip ourselves so the transport hands over the
				// body as sent: the figures are the server's, not the cost
				// of this process inflating it.
				req.Header.Set("Accept-Encoding", "gzip")
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
						// Shed by the server's queue, as designed: counted apart.
						shed.Add(1)
						continue
					}
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("%s: status %d", p, resp.StatusCode)
					}
				}
				if ctx.Err() != nil && err != nil {
					break // cut off by the end of the run, not an error of the server
				}
				if err != nil {
					errs.Add(1)
					firstE.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("%s: clients=%d requests=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d shed=%d\n", *label, *clients, len(lat),
		float64(len(lat))/elapsed.Seconds(), ms(pct(0.50)), ms(pct(0.99)), errs.Load(), shed.Load())
	if e := firstE.Load(); e != nil {
		fmt.Printf("%s: first error: %s\n", *label, e)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
