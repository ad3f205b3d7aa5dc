// Package doclint holds the test that keeps the repository's documentation
// rules checked rather than remembered: every package, in every module of
// the workspace, has a doc.go with its package comment; every exported
// name at the top level (and every exported method of an exported type)
// has a doc comment; and every exported type of a public library package
// has an Example in that package's tests (Example<Type> or
// Example<Type>_<suffix>). Commands (package main) and internal packages
// need no examples.
package doclint
