package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/simulator"
)

func (m *Main) runDemo(ctx context.Context, args []string) error {
	fs := m.flags("demo", "demo [--duration 0] [--devices 3] [--addr 127.0.0.1:0]")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	devices := fs.Int("devices", 3, "number of simulated devices (1 to 100)")
	addr := fs.String("addr", "127.0.0.1:0", "HTTPS listen address (port 0 picks a free port)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *devices < 1 || *devices > 100 {
		return errors.New("--devices must be between 1 and 100")
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	tmp, err := os.MkdirTemp("", "vitalgate-demo-")
	if err != nil {
		return err
	}
	dir := filepath.Join(tmp, "data")
	fmt.Fprintf(m.Stderr, "Vitalgate demo: creating a data dir in %s ...\n", dir)
	if _, err := m.initDataDir(ctx, dir, []string{"localhost", "127.0.0.1", "::1"}); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()

	kinds := []string{"monitor", "pulse-oximeter", "thermometer", "scale"}
	var devs []simulator.DeviceConfig
	for i := 0; i < *devices; i++ {
		id := fmt.Sprintf("demo-device-%02d", i+1)
		patient := fmt.Sprintf("demo-patient-%02d", i+1)
		_, secret, err := m.addDevice(ctx, n, id, patient, "Vitalgate simulator", time.Hour)
		if err != nil {
			return err
		}
		devs = append(devs, simulator.DeviceConfig{ID: id, PatientID: patient, EnrollSecret: secret, Kind: kinds[i%len(kinds)]})
	}

	logFile, err := os.OpenFile(filepath.Join(tmp, "server.log"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(slog.NewJSONHandler(logFile, nil))

	cfg := httpapi.DefaultConfig()
	cfg.Addr = *addr
	cfg.ShutdownTimeout = 5 * time.Second
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	ready := make(chan string, 1)
	sub := *m
	sub.Ready = func(a string) { ready <- a }
	var wg sync.WaitGroup
	var srvErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		srvErr = sub.serve(srvCtx, n, cfg, serveOptions{}, log)
		close(ready)
	}()
	listen, ok := <-ready
	if !ok {
		return fmt.Errorf("server did not start: %w", srvErr)
	}
	url := "https://" + listen
	fmt.Fprintf(m.Stderr, "Server listening on %s (log: %s)\n", url, logFile.Name())
	fmt.Fprintf(m.Stderr, "%d simulated devices enroll over EST and stream vital signs at 1 Hz over mutual TLS. Ctrl-C stops.\n", *devices)

	simErr := simulator.Run(ctx, simulator.Config{
		ServerURL: url, CAPool: n.ca.Pool(), Devices: devs, Interval: time.Second,
	}, func(st simulator.Stats) {
		fmt.Fprintf(m.Stderr, "\r%s   ", st.String())
	})
	fmt.Fprintln(m.Stderr)
	stopServer()
	wg.Wait()
	if simErr != nil && !errors.Is(simErr, context.Canceled) && !errors.Is(simErr, context.DeadlineExceeded) {
		return fmt.Errorf("simulator: %w", simErr)
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
	fmt.Fprintf(m.Stderr, "Serve it again:\n  %s serve --data %s\n", self, dir)
	return nil
}
