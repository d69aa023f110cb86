package attest

// ParseEvidence decodes evidence of a format the way Verify does before it
// checks any signature; the fuzz tests of the external test package call it.
func ParseEvidence(format string, evidence []byte) error {
	dec, err := newDecMode()
	if err != nil {
		return err
	}
	switch format {
	case FormatAndroidKey:
		_, _, err = parseAndroid(evidence)
	case FormatAppleAppAttest:
		_, err = parseApple(dec, evidence)
	default:
		_, err = parseWebAuthn(dec, evidence)
	}
	return err
}
