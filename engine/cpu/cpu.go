// Package cpu selects the host BLAS: OpenBLAS through gonum's netlib
// bindings when built with the openblas tag, pure-Go gonum otherwise.
package cpu
