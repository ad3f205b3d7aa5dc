package bench

// shoalLibs holds shoal's own rows; they join the comparison once the pool
// package is in the tree.
var shoalLibs []Lib
