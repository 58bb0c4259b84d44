// Package fakeclock is the manual clock of the kit's tests: time moves only
// when a test calls Advance.
package fakeclock
