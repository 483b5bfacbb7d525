package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate/httpapi"
	vgnode "github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/simulator"
)

func (m *Main) runDemo(ctx context.Context, args []string) error {
	fs := m.flags("demo", "demo [--duration 0] [--devices 3] [--addr 127.0.0.1:0]")
	duration := fs.Duration("duration", 0, "stop this long after the server is up (0: run until Ctrl-C)")
	devices := fs.Int("devices", 3, "number of simulated devices (1 to 100); one in three speaks HL7 v2 over MLLP/TLS, the others FHIR over HTTPS")
	addr := fs.String("addr", "127.0.0.1:0", "HTTPS listen address (port 0 picks a free port)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *devices < 1 || *devices > 100 {
		return errors.New("--devices must be between 1 and 100")
	}
	tmp, err := os.MkdirTemp("", "vitalgate-demo-")
	if err != nil {
		return err
	}
	dir := filepath.Join(tmp, "data")
	fmt.Fprintf(m.Stderr, "Vitalgate demo: creating a data dir in %s ...\n", dir)
	if _, err := vgnode.Init(ctx, dir, vgnode.InitOptions{Operator: operator()}, m.env()); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()

	kinds := []string{"monitor", "pulse-oximeter", "thermometer", "scale"}
	var fhirDevs, hl7Devs []simulator.DeviceConfig
	for i := 0; i < *devices; i++ {
		id := fmt.Sprintf("demo-device-%02d", i+1)
		patient := fmt.Sprintf("demo-patient-%02d", i+1)
		_, secret, err := m.addDevice(ctx, n, id, patient, "Vitalgate simulator", time.Hour)
		if err != nil {
			return err
		}
		d := simulator.DeviceConfig{ID: id, PatientID: patient, EnrollSecret: secret, Kind: kinds[i%len(kinds)]}
		if i%3 == 2 {
			hl7Devs = append(hl7Devs, d)
		} else {
			fhirDevs = append(fhirDevs, d)
		}
	}

	logPath := filepath.Join(tmp, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- a new file in our own temporary directory
	if err != nil {
		return err
	}
	defer logFile.Close()

	opt := vgnode.Options{HTTP: httpapi.DefaultConfig(), Logger: slog.New(slog.NewJSONHandler(logFile, nil))}
	opt.HTTP.Addr = *addr
	opt.HTTP.ShutdownTimeout = 5 * time.Second
	mllpAddr, err := pickLoopbackAddr()
	if err != nil {
		return err
	}
	opt.MLLPAddr = mllpAddr
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	ready := make(chan string, 1)
	opt.Ready = func(a string) {
		ready <- a
		if m.Ready != nil {
			m.Ready(a)
		}
	}
	var wg sync.WaitGroup
	var srvErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		srvErr = n.Serve(srvCtx, opt)
		close(ready)
	}()
	listen, ok := <-ready
	if !ok {
		return fmt.Errorf("server did not start: %w", srvErr)
	}
	url := "https://" + listen
	fmt.Fprintf(m.Stderr, "Server listening on %s (FHIR, EST) and %s (HL7 v2 over MLLP/TLS); log: %s\n", url, mllpAddr, logPath)
	fmt.Fprintf(m.Stderr, "%s (%d FHIR over HTTPS, %d HL7 PCD-01 over MLLP/TLS): each enrolls over EST and streams vital signs at 1 Hz over mutual TLS. Ctrl-C stops.\n",
		plural(*devices, "simulated device"), len(fhirDevs), len(hl7Devs))
	// The duration counts from here: setting up (key derivation, enrollment secrets) takes
	// as long as the machine needs.
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	// Two fleets, one status line.
	// On a terminal the line is rewritten in place; elsewhere (a log file, a pipe, CI) one
	// line is written every statusEvery, so that the output stays readable.
	var mu sync.Mutex
	stats := make([]simulator.Stats, 2)
	tty := isTerminal(m.Stderr)
	var lastLine time.Time
	show := func(i int) func(simulator.Stats) {
		return func(st simulator.Stats) {
			mu.Lock()
			defer mu.Unlock()
			stats[i] = st
			line := fmt.Sprintf("FHIR: %s | HL7: %s", brief(stats[0]), brief(stats[1]))
			if tty {
				fmt.Fprintf(m.Stderr, "\r%s   ", line)
				return
			}
			if now := time.Now(); now.Sub(lastLine) >= statusEvery {
				lastLine = now
				fmt.Fprintln(m.Stderr, line)
			}
		}
	}
	errs := make([]error, 2)
	var swg sync.WaitGroup
	for i, fleet := range [][]simulator.DeviceConfig{fhirDevs, hl7Devs} {
		if len(fleet) == 0 {
			continue
		}
		c := simulator.Config{ServerURL: url, CAPool: n.ca.Pool(), Devices: fleet, Interval: time.Second}
		if i == 1 {
			c.HL7Addr = mllpAddr
		}
		swg.Add(1)
		go func(i int, c simulator.Config) {
			defer swg.Done()
			errs[i] = simulator.Run(ctx, c, show(i))
		}(i, c)
	}
	swg.Wait()
	if tty {
		fmt.Fprintln(m.Stderr)
	} else {
		fmt.Fprintf(m.Stderr, "FHIR: %s | HL7: %s\n", brief(stats[0]), brief(stats[1]))
	}
	stopServer()
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("simulator: %w", err)
		}
	}
	if srvErr != nil {
		return fmt.Errorf("server: %w", srvErr)
	}
	fmt.Fprintf(m.Stderr, "Demo stopped. The data dir is %s\n", dir)
	self := "vitalgate"
	if strings.Contains(os.Args[0], "go-build") {
		self = "go run ./cmd/vitalgate" // started with go run
	}
	fmt.Fprintf(m.Stderr, "Export what the devices sent (decrypted FHIR NDJSON):\n  %s export --data %s\n", self, dir)
	fmt.Fprintf(m.Stderr, "Check the audit trail:\n  %s audit verify --data %s\n", self, dir)
	fmt.Fprintf(m.Stderr, "Serve it again:\n  %s serve --data %s\n", self, dir)
	return nil
}

// statusEvery is how often the demo writes its status line when standard error is not a
// terminal.
const statusEvery = 5 * time.Second

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// plural is "1 device", "2 devices".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// brief is a short status of one simulated fleet.
func brief(s simulator.Stats) string {
	return fmt.Sprintf("%s, %d accepted, %d rejected, %d failed, %.1f obs/s", plural(s.Devices, "device"), s.Accepted, s.Rejected, s.Failed, s.Rate)
}

// pickLoopbackAddr returns a loopback address with a port free right now.
func pickLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
