// Command etcdload is the etcd side of bench scenario 7: etcd's own Go client
// (clientv3, as etcd's benchmark tool uses) driving a closed loop, one
// connection per client, and a trivial gRPC server answering etcd's KV and
// Lease calls at once, which shows the client's own ceiling.
//
//	etcdload fill  -endpoint URL -keys K -value-file F
//	etcdload put   -endpoint URL -clients N -count M -prefix P [-server-pid PID]
//	etcdload range -endpoint URL -clients N -keys K -duration S -warmup S [-server-pid PID]
//	etcdload fake  -listen 127.0.0.1:0 -value-file F
//
// put and range print one line of key=value figures on stdout; fake logs
// "listening on http://ADDR" on stderr and serves until SIGTERM.
// Built by bench/run in GOPATH mode (GO111MODULE=off) from Debian's packages.
package main

import (
	"flag"
	"fmt"
	"io/ioutil"
	"os"
)

// opts holds every flag; each subcommand reads those it documents.
type opts struct {
	endpoint  string
	listen    string
	clients   int
	count     int
	keys      int
	prefix    string
	valueFile string
	duration  float64
	warmup    float64
	leaseTTL  int64
	serverPID int
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: etcdload fill|put|range|fake [flags] (see the source's comment)")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var o opts
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	fs.StringVar(&o.endpoint, "endpoint", "", "etcd client URL (http://127.0.0.1:PORT)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "fake: address to listen on")
	fs.IntVar(&o.clients, "clients", 1, "concurrent clients, one connection each")
	fs.IntVar(&o.count, "count", 1000, "put: operations in all")
	fs.IntVar(&o.keys, "keys", 1000, "fill/range: keys /resolve/svc-0000...")
	fs.StringVar(&o.prefix, "prefix", "/bench/", "put: key prefix, distinct per run")
	fs.StringVar(&o.valueFile, "value-file", "", "fill/fake: the value's bytes")
	fs.Float64Var(&o.duration, "duration", 2, "range: counted seconds")
	fs.Float64Var(&o.warmup, "warmup", 0.5, "range: seconds sent but not counted")
	fs.Int64Var(&o.leaseTTL, "lease-ttl", 3600, "put: TTL of each client's lease, seconds")
	fs.IntVar(&o.serverPID, "server-pid", 0, "put/range: measure this process's CPU time")
	if err := fs.Parse(os.Args[2:]); err != nil {
		usage()
	}
	var value []byte
	if o.valueFile != "" {
		v, err := ioutil.ReadFile(o.valueFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcdload:", err)
			os.Exit(1)
		}
		value = v
	}
	var err error
	switch os.Args[1] {
	case "fill":
		err = fill(&o, value)
	case "put":
		err = put(&o)
	case "range":
		err = rangeLoad(&o)
	case "fake":
		err = fake(&o, value)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdload:", err)
		os.Exit(1)
	}
}
