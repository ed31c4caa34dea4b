package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/mvcc/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeServer answers Put, Range and LeaseGrant at once with etcd's own
// generated messages; everything else is unimplemented. Against it the
// client measures its own ceiling (the client, gRPC and loopback).
type fakeServer struct {
	value []byte
	rev   int64
	lease int64
}

func (f *fakeServer) header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: 1, MemberId: 1, Revision: atomic.AddInt64(&f.rev, 1), RaftTerm: 2}
}

func (f *fakeServer) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	kv := &mvccpb.KeyValue{Key: r.Key, Value: f.value, CreateRevision: 2, ModRevision: 2, Version: 1}
	return &pb.RangeResponse{Header: f.header(), Kvs: []*mvccpb.KeyValue{kv}, Count: 1}, nil
}

func (f *fakeServer) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return &pb.PutResponse{Header: f.header()}, nil
}

func (f *fakeServer) DeleteRange(context.Context, *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake")
}

func (f *fakeServer) Txn(context.Context, *pb.TxnRequest) (*pb.TxnResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake")
}

func (f *fakeServer) Compact(context.Context, *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake")
}

func (f *fakeServer) LeaseGrant(_ context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	return &pb.LeaseGrantResponse{Header: f.header(), ID: atomic.AddInt64(&f.lease, 1), TTL: r.TTL}, nil
}

func (f *fakeServer) LeaseRevoke(context.Context, *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake")
}

func (f *fakeServer) LeaseKeepAlive(pb.Lease_LeaseKeepAliveServer) error {
	return status.Error(codes.Unimplemented, "fake")
}

func (f *fakeServer) LeaseTimeToLive(context.Context, *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake")
}

func (f *fakeServer) LeaseLeases(context.Context, *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake")
}

func fake(o *opts, value []byte) error {
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	f := &fakeServer{value: value}
	pb.RegisterKVServer(s, f)
	pb.RegisterLeaseServer(s, f)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		s.Stop()
	}()
	fmt.Fprintf(os.Stderr, "listening on http://%s\n", l.Addr())
	if err := s.Serve(l); err != nil && err != grpc.ErrServerStopped {
		return err
	}
	return nil
}
