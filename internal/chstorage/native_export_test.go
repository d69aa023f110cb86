package chstorage

// ParseStatement parses a statement that is not one of the embedded files
// (for the tests of Render).
func ParseStatement(name, text string) (*Statement, error) { return parseStatement(name, text) }
