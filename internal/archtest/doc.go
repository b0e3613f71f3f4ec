// Package archtest holds tests of the code's shape: which packages may
// import which.
package archtest
