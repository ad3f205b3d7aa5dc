// Package standards holds the tests that keep the repository's rules
// checked rather than remembered, over every module of the workspace:
// every package has a doc.go with its package comment; every exported name
// at the top level (and every exported method of an exported type, and
// every exported field of an exported struct) has a doc comment; every exported type of a library package has an Example in
// that package's tests (Example<Type> or Example<Type>_<suffix>), where
// commands (package main) and internal packages need none; and every
// package whose code starts goroutines and that has tests runs
// goleak.VerifyTestMain.
package standards
