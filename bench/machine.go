package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// MachineInfo describes where a run happened.
type MachineInfo struct {
	CPU        string `json:"cpu"`          // model name from /proc/cpuinfo, if readable
	NumCPU     int    `json:"nproc"`        // logical CPUs usable by the process
	GOMAXPROCS int    `json:"gomaxprocs"`   // Go's processor limit
	GoVersion  string `json:"go_version"`   // runtime.Version()
	OS         string `json:"os"`           // GOOS/GOARCH
	Commit     string `json:"commit"`       // VCS revision of the binary or the working tree
	Modified   bool   `json:"modified"`     // the working tree had uncommitted changes
	MemTotal   string `json:"mem_total"`    // MemTotal from /proc/meminfo, if readable
	Hostname   string `json:"hostname"`     // os.Hostname
	FIPS140    string `json:"godebug_fips"` // GODEBUG fips140 setting, if any
}

// Machine returns the description of this machine and binary. The commit comes from the
// binary's build information, or else from `git rev-parse --short HEAD` in the working
// directory; it is empty when neither is available.
func Machine() MachineInfo {
	m := MachineInfo{
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH,
	}
	m.CPU = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	m.Hostname, _ = os.Hostname()
	for _, kv := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if v, ok := strings.CutPrefix(kv, "fips140="); ok {
			m.FIPS140 = v
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				m.Commit = s.Value
				if len(m.Commit) > 7 {
					m.Commit = m.Commit[:7]
				}
			case "vcs.modified":
				m.Modified = s.Value == "true"
			}
		}
	}
	if m.Commit == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
			m.Commit = strings.TrimSpace(string(out))
			if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
				m.Modified = len(bytes.TrimSpace(st)) > 0
			}
		}
	}
	return m
}

// procField returns the value of the first "name : value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path) // #nosec G304 -- fixed /proc paths
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ProcessMemory is a snapshot of this process's memory: the Go heap and stacks after a
// garbage collection, and the resident set size the kernel reports.
type ProcessMemory struct {
	HeapAlloc  uint64 // bytes of live heap objects (runtime.MemStats.HeapAlloc)
	StackInuse uint64 // bytes of goroutine stacks
	RSS        uint64 // VmRSS from /proc/self/status, 0 if unavailable
	Goroutines int
}

// ReadProcessMemory collects garbage twice (so that finalizers have run) and returns the
// process's memory.
func ReadProcessMemory() ProcessMemory {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ProcessMemory{HeapAlloc: ms.HeapAlloc, StackInuse: ms.StackInuse, RSS: vmRSS(), Goroutines: runtime.NumGoroutine()}
}

// vmRSS returns VmRSS of /proc/self/status in bytes, or 0.
func vmRSS() uint64 {
	v := procField("/proc/self/status", "VmRSS")
	var kb uint64
	for _, c := range strings.TrimSuffix(v, " kB") {
		if c < '0' || c > '9' {
			return 0
		}
		kb = kb*10 + uint64(c-'0')
	}
	return kb * 1024
}

// LoadAverage returns the 1, 5 and 15 minute load averages from /proc/loadavg as text, and
// the 1 minute one as a number (0 if unavailable), to tell a quiet machine from a busy one.
func LoadAverage() (string, float64) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "", 0
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "", 0
	}
	var one float64
	_, _ = fmt.Sscanf(f[0], "%g", &one)
	return strings.Join(f[:3], " "), one
}
