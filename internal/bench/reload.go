package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// The reload section: a small HTTP server, the child, serves the secret
// it reads from a file delivered by rolesenv. A rotation reaches it by a
// restart (--on-change restart) or a reload (--on-change reload: the file
// rewritten, then SIGHUP, on which the server reads it again), while
// clients keep it busy. Measured: the time from the rotation to the first
// answer with the new value, and the requests that failed meanwhile.

// reloadChildVar makes this program the HTTP server child (see main).
const reloadChildVar = "BENCH_CHILD"

// refreshGap is rolesenv's shortest time between two checks asked for
// with the refresh signal (cmd_run_limits.go); trials are spaced by more,
// so that each check runs at once.
const refreshGap = 5*time.Second + 200*time.Millisecond

// reloadWorkers are the clients that keep the server busy, each sending
// one request after the other.
const reloadWorkers = 4

const reloadSecret = "bench/reload"

// reloadServer serves the contents of file on addr, reads the file again
// on SIGHUP, and shuts down gracefully on SIGTERM (the listener closes at
// once, requests in flight finish).
func reloadServer(addr, file string) int {
	var value atomic.Value
	read := func() error {
		data, err := os.ReadFile(file)
		if err == nil {
			value.Store(string(data))
		}
		return err
	}
	if err := read(); err != nil {
		fmt.Fprintln(os.Stderr, "reload-server:", err)
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reload-server:", err)
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, value.Load().(string))
	})}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGTERM {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = srv.Shutdown(ctx)
				cancel()
				return
			}
			_ = read()
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return 1
	}
	return 0
}

// reloadRow is one way of applying a rotation, measured over trials.
type reloadRow struct {
	mode     string // restart or reload
	took     sample // rotation to the first answer with the new value
	failed   []int  // requests that failed, per trial
	requests []int  // requests sent, per trial
}

type reloadResult struct {
	rows    []*reloadRow
	workers int
}

// measureReload runs trials rotations under each mode.
func (b *bench) measureReload(ctx context.Context, trials int) (*reloadResult, error) {
	if err := b.setRTT(viaEmulator, 0); err != nil {
		return nil, err
	}
	sm := secretsmanager.NewFromConfig(b.sdkConfig())
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(reloadSecret), SecretString: aws.String("v-0")}); err != nil {
		return nil, err
	}
	res := &reloadResult{workers: reloadWorkers}
	for _, mode := range []string{"restart", "reload"} {
		b.log("reload: %d rotations applied by %s", trials, mode)
		row, err := b.reloadTrials(ctx, sm, mode, trials)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		res.rows = append(res.rows, row)
	}
	return res, nil
}

// reloadTrials runs one rolesenv with the server under mode and rotates
// the secret trials times.
func (b *bench) reloadTrials(ctx context.Context, sm *secretsmanager.Client, mode string, trials int) (*reloadRow, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	file := filepath.Join(b.dir, "reload.env")
	if err := os.WriteFile(file, []byte("SECRET_FILE=file:sm://"+reloadSecret+"\n"), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, b.rolesenv, "run", "--env-file", file, "--on-change", mode, "--debounce", "0s",
		"--interval", "1h", "--refresh-signal", "USR1", "--max-restarts", "0", "--", self)
	cmd.Env = append(b.baseEnv(credStatic, trustBundle), reloadChildVar+"=reload-server", "BENCH_ADDR="+addr)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: reloadWorkers}}
	defer client.CloseIdleConnections()
	url := "http://" + addr + "/"
	if err := waitValue(ctx, client, url, "", 30*time.Second); err != nil {
		return nil, fmt.Errorf("the server did not answer: %v: %s", err, lastLine(stderr.String()))
	}
	row := &reloadRow{mode: mode}
	for i := range trials {
		time.Sleep(refreshGap) // since the previous refresh, or start-up's
		value := fmt.Sprintf("v-%s-%d-%d", mode, i, time.Now().UnixNano())
		took, failed, sent, err := b.reloadTrial(ctx, sm, cmd.Process, client, url, value)
		if err != nil {
			return nil, fmt.Errorf("%v: %s", err, lastLine(stderr.String()))
		}
		row.took = append(row.took, took)
		row.failed = append(row.failed, failed)
		row.requests = append(row.requests, sent)
	}
	return row, nil
}

// reloadTrial rotates the secret to value while the workers send
// requests, asks rolesenv to check at once, and waits for the new value.
func (b *bench) reloadTrial(ctx context.Context, sm *secretsmanager.Client, rolesenv *os.Process, client *http.Client, url, value string) (time.Duration, int, int, error) {
	var failed, sent atomic.Int64
	var seen atomic.Int64 // nanoseconds after start of the first new answer
	start := time.Now()
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range reloadWorkers {
		wg.Go(func() {
			for lctx.Err() == nil {
				sent.Add(1)
				got, err := get(lctx, client, url)
				switch {
				case lctx.Err() != nil:
					sent.Add(-1)
				case err != nil:
					failed.Add(1)
				case got == value:
					seen.CompareAndSwap(0, int64(time.Since(start)))
				}
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(reloadSecret), SecretString: aws.String(value)}); err != nil {
		return 0, 0, 0, err
	}
	if err := rolesenv.Signal(syscall.SIGUSR1); err != nil {
		return 0, 0, 0, err
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for seen.Load() == 0 {
		select {
		case <-deadline:
			return 0, 0, 0, errors.New("the new value never reached the server")
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		case <-tick.C:
		}
	}
	// A little more load after the change, for the tail of a restart.
	time.Sleep(100 * time.Millisecond)
	stop()
	wg.Wait()
	return time.Duration(seen.Load()), int(failed.Load()), int(sent.Load()), nil
}

func get(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(body), err
}

// waitValue waits until url answers (with want, unless want is "").
func waitValue(ctx context.Context, client *http.Client, url, want string, limit time.Duration) error {
	end := time.Now().Add(limit)
	for {
		got, err := get(ctx, client, url)
		if err == nil && (want == "" || got == want) {
			return nil
		}
		if time.Now().After(end) {
			if err == nil {
				err = errors.New("an old value")
			}
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// lockedBuffer is a bytes buffer safe for a process's output and a
// reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// writeReload is the section of the report.
func (r *report) writeReload(p printer) {
	if r.reload == nil {
		return
	}
	p("## Reload versus restart\n\n")
	p("A rotation of a secret that a small Go HTTP server reads from a file (`SECRET_FILE=file:sm://...`), applied by a restart (`--on-change restart`: SIGTERM, a graceful shutdown, a new process) or by a reload (`--on-change reload`: the file rewritten, then SIGHUP, on which the server reads it again). %d clients on loopback send requests one after the other throughout; rolesenv is asked to check at once (`--refresh-signal`) right after the rotation, with no debounce. *To new value* is the time from the rotation to the first answer with the new value (the check's calls to the emulator included; trials are spaced by more than the 5 s that rolesenv leaves between two checks asked for with the signal); *failed* are the requests that failed (connection refused or reset) from the rotation until 100 ms after the new value.\n\n", r.reload.workers)
	p("| applied by | to new value, median | p90 | requests | failed, median | failed, max |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.reload.rows {
		p("| %s | %s ms | %s ms | %d | %d | %d |\n", row.mode, ms(row.took.median()), ms(row.took.p90()),
			medianInt(row.requests), medianInt(row.failed), maxInt(row.failed))
	}
	p("\nA reload keeps the process, its listening socket and its connections: nothing is refused. A restart closes the socket for as long as the old process takes to stop and the new one to start and listen; every request in that window fails, and with more clients, more fail.\n\n")
}

func medianInt(xs []int) int {
	s := make(sample, len(xs))
	for i, x := range xs {
		s[i] = time.Duration(x)
	}
	return int(s.median())
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
