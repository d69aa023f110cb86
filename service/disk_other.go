//go:build !linux

package service

import "errors"

// diskFree is not implemented here: the embedded broker's disk is not probed.
func diskFree(string) (uint64, error) { return 0, errors.ErrUnsupported }
