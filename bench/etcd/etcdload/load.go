package main

import (
	"context"
	"fmt"
	"io/ioutil"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

const opTimeout = 10 * time.Second

// connect opens n clients, each with its own gRPC connection, as the C
// side gives each client its own nng socket.
func connect(o *opts, n int) ([]*clientv3.Client, error) {
	cs := make([]*clientv3.Client, 0, n)
	for i := 0; i < n; i++ {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{o.endpoint},
			DialTimeout: opTimeout,
		})
		if err != nil {
			closeAll(cs)
			return nil, fmt.Errorf("connect %s: %v", o.endpoint, err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func closeAll(cs []*clientv3.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// cpuSeconds is utime + stime of pid from /proc (0 when pid is 0 or unreadable).
func cpuSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	// After the command name: state is field 3 of stat, utime 14 and stime 15.
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// report prints the figures the C driver parses.
func report(ok, bad, errs int64, secs float64, lat []time.Duration, cpu float64) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		r := int(p/100*float64(len(lat))+0.999999) - 1
		if r < 0 {
			r = 0
		}
		return float64(lat[r].Nanoseconds()) / 1e3
	}
	fmt.Printf("ok=%d bad=%d errors=%d seconds=%.6f rps=%.1f p50_us=%.1f p99_us=%.1f server_cpu_s=%.3f\n",
		ok, bad, errs, secs, float64(ok)/secs, pct(50), pct(99), cpu)
}

// fill writes the keys range reads, sequentially.
func fill(o *opts, value []byte) error {
	cs, err := connect(o, 1)
	if err != nil {
		return err
	}
	defer closeAll(cs)
	for i := 0; i < o.keys; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := cs[0].Put(ctx, fmt.Sprintf("/resolve/svc-%04d", i), string(value))
		cancel()
		if err != nil {
			return fmt.Errorf("fill: %v", err)
		}
	}
	return nil
}

// put: o.count puts with a lease, instance i by client i % clients, each
// client with its own lease granted before the clock starts. The key and
// value carry what a discoveryd Register carries: service, endpoint,
// metadata, TTL.
func put(o *opts) error {
	cs, err := connect(o, o.clients)
	if err != nil {
		return err
	}
	defer closeAll(cs)
	leases := make([]clientv3.LeaseID, o.clients)
	for i, c := range cs {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		g, err := c.Grant(ctx, o.leaseTTL)
		cancel()
		if err != nil {
			return fmt.Errorf("lease grant: %v", err)
		}
		leases[i] = g.ID
	}
	var errs int64
	lats := make([][]time.Duration, o.clients)
	var wg sync.WaitGroup
	cpu0 := cpuSeconds(o.serverPID)
	t0 := time.Now()
	for t := 0; t < o.clients; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			for i := t; i < o.count; i += o.clients {
				ep := fmt.Sprintf("http://node-%06d.prod.internal:8080", i)
				key := fmt.Sprintf("%sdur-%03d/%s", o.prefix, i/50, ep)
				val := fmt.Sprintf(`{"endpoint":"%s","metadata":{"zone":"eu-west-1%c"},"ttl_ms":86400000}`,
					ep, 'a'+i%3)
				s := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				_, err := cs[t].Put(ctx, key, val, clientv3.WithLease(leases[t]))
				cancel()
				if err != nil {
					atomic.AddInt64(&errs, 1)
					continue
				}
				lats[t] = append(lats[t], time.Since(s))
			}
		}(t)
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	cpu := cpuSeconds(o.serverPID) - cpu0
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	report(int64(len(all)), 0, errs, secs, all, cpu)
	return nil
}

// rangeLoad: a timed closed loop of serializable ranges of one key each,
// keys round-robin from a per-client offset, after a warm-up.
func rangeLoad(o *opts) error {
	cs, err := connect(o, o.clients)
	if err != nil {
		return err
	}
	defer closeAll(cs)
	var bad, errs int64
	lats := make([][]time.Duration, o.clients)
	start := time.Now()
	tMeasure := start.Add(time.Duration(o.warmup * 1e9))
	tEnd := tMeasure.Add(time.Duration(o.duration * 1e9))
	var wg sync.WaitGroup
	for t := 0; t < o.clients; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			k := (t * 7919) % o.keys // clients start apart
			for {
				s := time.Now()
				if !s.Before(tEnd) {
					return
				}
				key := fmt.Sprintf("/resolve/svc-%04d", k)
				k = (k + 1) % o.keys
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				r, err := cs[t].Get(ctx, key, clientv3.WithSerializable())
				cancel()
				e := time.Now()
				if s.Before(tMeasure) || e.After(tEnd) {
					continue // warm-up, or finished after the window
				}
				if err != nil {
					atomic.AddInt64(&errs, 1)
				} else if len(r.Kvs) != 1 {
					atomic.AddInt64(&bad, 1)
				} else {
					lats[t] = append(lats[t], e.Sub(s))
				}
			}
		}(t)
	}
	time.Sleep(time.Until(tMeasure))
	cpu0 := cpuSeconds(o.serverPID)
	time.Sleep(time.Until(tEnd))
	cpu := cpuSeconds(o.serverPID) - cpu0
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	report(int64(len(all)), bad, errs, o.duration, all, cpu)
	return nil
}
