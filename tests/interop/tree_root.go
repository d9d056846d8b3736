// Command tree_root recomputes a hashbank log's root with Go's golang.org/x/mod/sumdb/tlog,
// an RFC 6962 implementation written independently of hashbank's.
//
//	tree_root ENTRIES_FILE   print the hex root of the tree over the entries, then, per line,
//	                         the hex leaf hash of each entry
//
// ENTRIES_FILE has one line per log entry, in index order: "leaf <base64 of the leaf bytes>"
// for an entry served with its bytes, or "hash <base64 of its leaf hash>" for a redacted one.
// Go hashes the leaf bytes itself (tlog.RecordHash: SHA-256(0x00 || bytes)); it never parses
// them, so a change of the leaf grammar cannot hide from it.
//
// Build offline against the Debian package golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go build -o tree_root tree_root.go
package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tree_root: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: tree_root ENTRIES_FILE")
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()

	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("no stored hash %d", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})

	var leaves []tlog.Hash
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := int64(0); scanner.Scan(); n++ {
		kind, text, ok := strings.Cut(scanner.Text(), " ")
		if !ok {
			fail("line %d: want \"leaf B64\" or \"hash B64\"", n+1)
		}
		data, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			fail("line %d: %v", n+1, err)
		}
		var h tlog.Hash
		switch kind {
		case "leaf":
			h = tlog.RecordHash(data)
		case "hash":
			if len(data) != tlog.HashSize {
				fail("line %d: a leaf hash has %d bytes", n+1, tlog.HashSize)
			}
			copy(h[:], data)
		default:
			fail("line %d: unknown kind %q", n+1, kind)
		}
		more, err := tlog.StoredHashesForRecordHash(n, h, reader)
		if err != nil {
			fail("entry %d: %v", n, err)
		}
		stored = append(stored, more...)
		leaves = append(leaves, h)
	}
	if err := scanner.Err(); err != nil {
		fail("%v", err)
	}
	root, err := tlog.TreeHash(int64(len(leaves)), reader)
	if err != nil {
		fail("%v", err)
	}
	fmt.Printf("%x\n", root[:])
	for _, h := range leaves {
		fmt.Printf("%x\n", h[:])
	}
}
