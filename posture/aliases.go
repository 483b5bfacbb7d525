package posture

// Alias names where a component known only by a CPE, a pkg:github purl or a bare name comes
// from: its source repository (the repo of an OSV GIT range, whose versions[] lists the
// affected tags) and, where advisories list it in an OSV ecosystem, that package. Embedded
// C libraries are the usual case: scanners keyed on purls miss them (osv-scanner#535,
// Dependency-Track#829). The table is part of the documented contract (README,
// "Vulnerability posture"); extend it here, one entry per library.
type Alias struct {
	CPE       string   // CPE vendor:product, lower case
	Names     []string // component names it is known by, lower case
	Repo      string   // source repository URL as OSV GIT ranges name it
	Ecosystem string   // OSV ecosystem of its advisories ("" when none)
	Package   string   // the package name in Ecosystem
}

// Aliases is the alias table.
var Aliases = []Alias{
	{CPE: "wolfssl:wolfssl", Names: []string{"wolfssl"}, Repo: "https://github.com/wolfssl/wolfssl"},
	{CPE: "nanopb_project:nanopb", Names: []string{"nanopb"}, Repo: "https://github.com/nanopb/nanopb", Ecosystem: "PyPI", Package: "nanopb"},
	{CPE: "zlib:zlib", Names: []string{"zlib"}, Repo: "https://github.com/madler/zlib"},
	{CPE: "openssl:openssl", Names: []string{"openssl"}, Repo: "https://github.com/openssl/openssl"},
	{CPE: "haxx:curl", Names: []string{"curl", "libcurl"}, Repo: "https://github.com/curl/curl"},
	{CPE: "haxx:libcurl", Names: []string{"libcurl"}, Repo: "https://github.com/curl/curl"},
	{CPE: "arm:mbed_tls", Names: []string{"mbedtls", "mbed tls"}, Repo: "https://github.com/mbed-tls/mbedtls"},
	{CPE: "lwip_project:lwip", Names: []string{"lwip"}, Repo: "https://git.savannah.nongnu.org/git/lwip.git"},
	{CPE: "amazon:freertos", Names: []string{"freertos", "freertos-kernel"}, Repo: "https://github.com/freertos/freertos-kernel"},
	{CPE: "sqlite:sqlite", Names: []string{"sqlite", "sqlite3"}, Repo: "https://github.com/sqlite/sqlite"},
	{CPE: "libexpat_project:libexpat", Names: []string{"expat", "libexpat"}, Repo: "https://github.com/libexpat/libexpat"},
	{CPE: "busybox:busybox", Names: []string{"busybox"}, Repo: "https://git.busybox.net/busybox"},
	{CPE: "linux:linux_kernel", Names: []string{"linux", "linux-kernel"}, Repo: "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git"},
}
