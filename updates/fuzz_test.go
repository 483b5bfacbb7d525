package updates

import (
	"strconv"
	"testing"
)

// FuzzMetadataName: a metadata file name off the wire is either refused or names a role and
// version that print back to exactly the same name.
func FuzzMetadataName(f *testing.F) {
	for _, s := range []string{"1.root.json", "timestamp.json", "12.snapshot.json", "3.targets.json", "7.pump-a.json",
		"0.root.json", "01.root.json", "1.timestamp.json", "root.json", "1..json", "1.../etc.json", "-1.root.json", "99999999999999999999.root.json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		role, version, ok := parseMetadataName(name)
		if !ok {
			return
		}
		back := role + ".json"
		if version != 0 {
			back = strconv.FormatInt(version, 10) + "." + back
		}
		if back != name {
			t.Fatalf("%q parsed as role %q version %d, which prints as %q", name, role, version, back)
		}
		if role != roleRoot && role != roleTargets && role != roleSnapshot && role != roleTimestamp && checkName("model", role) != nil {
			t.Fatalf("%q parsed to role %q, which is no role", name, role)
		}
	})
}

// FuzzTargetPath: a target path off the wire is either refused or splits into names that
// rebuild exactly the same path, none of which can climb out of its directory.
func FuzzTargetPath(f *testing.F) {
	sum := "84af876dd2f29eef100ddb030e602cdaf6bf49e1524c9cd0841e6d36c9cf09a1"
	for _, s := range []string{"pump-a/2.1.0/" + sum + ".fw.bin", "pump-a/2.1.0/fw.bin", "../x/" + sum + ".f", "a/b/c/" + sum + ".f",
		"pump-a/2.1.0/" + sum[:63] + "g.fw.bin", "pump-a//" + sum + ".fw.bin", "pump-a/../" + sum + ".fw.bin"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		model, version, sum, file, ok := parseTargetPath(path)
		if !ok {
			return
		}
		if back := model + "/" + version + "/" + sum + "." + file; back != path {
			t.Fatalf("%q splits into a path %q", path, back)
		}
		for _, part := range []string{model, version, file} {
			if part == "." || part == ".." || part == "" {
				t.Fatalf("%q has the part %q", path, part)
			}
		}
	})
}
