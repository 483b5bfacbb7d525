package main

import "os"

// operator returns the name of the local operator for CLI audit entries.
func operator() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "operator"
}
