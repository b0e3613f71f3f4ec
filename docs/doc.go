// Package docs holds the project's documents for users and operators (the
// product contract, operations, performance, the threat model, the
// package contracts). It has no code; its test keeps the documents'
// links inside the repository and the contract's code list complete.
package docs
