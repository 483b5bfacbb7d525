// Package migration reads a store's versioned schema migrations: embedded SQL files named
// NNNN_description.sql, returned in ascending version order. The stores (sqlite, postgres)
// apply them in their own transactions; this package only reads and checks the files.
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema migration.
type Migration struct {
	Version int    // NNNN of the file name, from 1
	Name    string // the file name without .sql
	SQL     string // the statements, reviewed like code
}

// Load returns the migrations in dir of fsys (typically an embed.FS) in ascending version
// order. It refuses a file not named NNNN_description.sql and two files with one version.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(base, ".sql"), SQL: string(text)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share a version", ms[i-1].Name, ms[i].Name)
		}
	}
	return ms, nil
}

// Latest returns the highest version in ms (sorted, as Load returns them), or 0.
func Latest(ms []Migration) int {
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// LatestIn returns the highest version among the migrations in dir of fsys: the schema version
// a build knows. It is 0 when the files cannot be read (Load reports why).
func LatestIn(fsys fs.FS, dir string) int {
	ms, err := Load(fsys, dir)
	if err != nil {
		return 0
	}
	return Latest(ms)
}

// Pending returns the migrations of ms (sorted, as Load returns them) that a database at
// version current has not applied yet, in the order to apply them. ok is false when current is
// beyond every migration in ms: the database was migrated by a newer build, and this one must
// not touch it.
func Pending(ms []Migration, current int) (pending []Migration, ok bool) {
	if current > Latest(ms) {
		return nil, false
	}
	for i, m := range ms {
		if m.Version > current {
			return ms[i:], true
		}
	}
	return nil, true
}
