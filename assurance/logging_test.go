package assurance_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// secretWords are the name fragments (lower case) that mark a value as secret.
var secretWords = []string{"secret", "password", "passwd", "token"}

// logMethods are log/slog's Logger methods and package functions (and the log package's
// print functions) that write a record.
var logMethods = map[string]bool{
	"Debug": true, "Info": true, "Warn": true, "Error": true,
	"DebugContext": true, "InfoContext": true, "WarnContext": true, "ErrorContext": true,
	"Log": true, "LogAttrs": true, "With": true, "WithGroup": true,
	"Print": true, "Printf": true, "Println": true, "Fatal": true, "Fatalf": true, "Fatalln": true,
	"Panic": true, "Panicf": true, "Panicln": true,
}

// logOKMarker is the inline annotation that accepts a flagged argument: a comment with it,
// and a reason, on the call's line or the line above, e.g.
//
//	// assurance:log-ok token_count is a number, not a token
const logOKMarker = "assurance:log-ok"

// isLogCall reports whether call writes a log record: a call of a logMethods name on the
// log or slog package, or on a receiver whose name contains "log" (log, logger, s.log).
func isLogCall(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || !logMethods[sel.Sel.Name] {
		return false
	}
	var recv string
	switch x := sel.X.(type) {
	case *ast.Ident:
		recv = x.Name
	case *ast.SelectorExpr:
		recv = x.Sel.Name
	case *ast.CallExpr: // logger.With(...).Info(...)
		return isLogCall(x)
	default:
		return false
	}
	return recv == "slog" || strings.Contains(strings.ToLower(recv), "log")
}

// secretName returns the secret word that name contains, or "".
func secretName(name string) string {
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return w
		}
	}
	return ""
}

// loggedSecrets parses files and returns file:line for every log call that passes a value
// named like a secret: an identifier or field anywhere in an argument (so slog.String("k",
// c.Secret) counts). String literals such as attribute keys and messages are not values
// and are not flagged.
func loggedSecrets(root string, files []string) ([]string, error) {
	fset := token.NewFileSet()
	var out []string
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		marked := map[int]bool{}
		for _, cg := range f.Comments {
			if strings.Contains(cg.Text(), logOKMarker) {
				marked[fset.Position(cg.End()).Line] = true
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !isLogCall(call) {
				return true
			}
			line := fset.Position(call.Pos()).Line
			for _, arg := range call.Args {
				ast.Inspect(arg, func(n ast.Node) bool {
					id, ok := n.(*ast.Ident)
					if !ok {
						return true
					}
					w := secretName(id.Name)
					if w == "" {
						return true
					}
					pos := fset.Position(id.Pos())
					if marked[pos.Line] || marked[pos.Line-1] || marked[line-1] {
						return true
					}
					file, _ := filepath.Rel(root, pos.Filename)
					out = append(out, fmt.Sprintf("%s:%d: log call passes %q (name contains %q); log an id or a fingerprint instead, or annotate with // %s <reason>",
						filepath.ToSlash(file), pos.Line, types.ExprString(arg), w, logOKMarker))
					return false
				})
			}
			return true
		})
	}
	sort.Strings(out)
	return out, nil
}

// TestNoSecretsLogged checks the production code of every package of ours (tests may log
// what they like: they never see real secrets).
func TestNoSecretsLogged(t *testing.T) {
	all, _, _ := listings(t)
	root := moduleRoot(t)
	var files []string
	for _, p := range all {
		for _, f := range p.GoFiles {
			files = append(files, filepath.Join(p.Dir, f))
		}
	}
	bad, err := loggedSecrets(root, files)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "secrets are never logged", bad)
}
