package supervisor

import (
	"io"
	"os"
	"strings"
)

// lastLines returns up to n last lines written to path after offset: what
// one start of the child wrote, not the history of earlier ones.
func lastLines(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size()-offset > max {
		offset = st.Size() - max
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, offset, st.Size()-offset))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
