package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
)

// The gRPC row can run the Hubble test server in a child process, so that the process
// it measures is shadowgate alone: a Relay runs on other machines, and the CPU it spends
// marshalling and sending is not what a shadowgate pod must budget for. The child is this
// same binary (as for the memory figure), started with grpcServerEnv naming a file of
// length-prefixed marshaled GetFlowsResponses; it prints its address on one line, serves
// them on one stream, and exits when its standard input closes.
const grpcServerEnv = "SHADOWGATE_BENCH_GRPC_SERVER"

func grpcServerChild(path string, stdin io.Reader, stdout io.Writer) error {
	msgs, err := readMessages(path)
	if err != nil {
		return err
	}
	srv, err := hubbletest.NewServer(hubbletest.Scenario{Streams: [][]hubbletest.Step{{hubbletest.SendEncoded(msgs)}}})
	if err != nil {
		return err
	}
	defer srv.Stop()
	if _, err := fmt.Fprintln(stdout, srv.Addr()); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, stdin)
	return err
}

// writeMessages writes msgs to a new temporary file, each after its length (uvarint).
func writeMessages(msgs [][]byte) (path string, err error) {
	f, err := os.CreateTemp("", "shadowgate-grpc-*.bin")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	var n [binary.MaxVarintLen64]byte
	for _, m := range msgs {
		w.Write(n[:binary.PutUvarint(n[:], uint64(len(m)))])
		w.Write(m)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	return f.Name(), f.Close()
}

func readMessages(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var msgs [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, fmt.Errorf("%s: message %d is truncated", path, len(msgs)+1)
		}
		msgs = append(msgs, b[k:k+int(n):k+int(n)])
		b = b[k+int(n):]
	}
	return msgs, nil
}

// childServer is the test server running in a child process.
type childServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	file  string
	errs  strings.Builder
}

// startChildServer starts a child serving msgs and waits for its address.
func startChildServer(ctx context.Context, msgs [][]byte) (*childServer, error) {
	file, err := writeMessages(msgs)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		os.Remove(file)
		return nil, fmt.Errorf("finding this binary to re-run it: %w", err)
	}
	c := &childServer{file: file}
	c.cmd = exec.CommandContext(ctx, exe)
	c.cmd.Env = append(os.Environ(), grpcServerEnv+"="+file)
	c.cmd.Stderr = &c.errs
	if c.stdin, err = c.cmd.StdinPipe(); err == nil {
		var out io.ReadCloser
		if out, err = c.cmd.StdoutPipe(); err == nil {
			if err = c.cmd.Start(); err == nil {
				addr, rerr := bufio.NewReader(out).ReadString('\n')
				if rerr != nil {
					c.stop()
					return nil, fmt.Errorf("gRPC server child printed no address: %w: %s", rerr, strings.TrimSpace(c.errs.String()))
				}
				c.addr = strings.TrimSpace(addr)
				return c, nil
			}
		}
	}
	os.Remove(file)
	return nil, fmt.Errorf("starting the gRPC server child: %w", err)
}

// stop closes the child's standard input, which ends it, and waits for it.
func (c *childServer) stop() error {
	defer os.Remove(c.file)
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("gRPC server child: %w: %s", err, strings.TrimSpace(c.errs.String()))
	}
	return nil
}
