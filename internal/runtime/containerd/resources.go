package containerd

import (
	"bufio"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
)

type meminfo struct{ total, available int64 }

// readMeminfo reads the machine's memory from /proc/meminfo.
func readMeminfo() (meminfo, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return meminfo{}, fmt.Errorf("read memory: %w", err)
	}
	defer f.Close()
	var m meminfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "MemTotal:":
			m.total = kb << 10
		case "MemAvailable:":
			m.available = kb << 10
		}
	}
	return m, sc.Err()
}

func numCPU() int { return goruntime.NumCPU() }
