// Command verify_note is an independent check of hashbank's signed notes with Go's
// golang.org/x/mod/sumdb/note (the reference C2SP signed-note implementation).
//
//	verify_note VKEY_FILE NOTE_FILE   verify NOTE_FILE with the verifier key(s) in VKEY_FILE
//	                                  (one per line); print the verified text; exit 1 on failure
//	verify_note -sign SKEY_FILE TEXT_FILE
//	                                  sign TEXT_FILE with the Go signer key in SKEY_FILE
//	                                  (PRIVATE+KEY+<name>+<id>+<key>); print the signed note
//
// Build offline against the Debian package golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go build -o verify_note verify_note.go
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "verify_note: "+format+"\n", args...)
	os.Exit(1)
}

func readFile(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	return data
}

func sign(skeyFile, textFile string) {
	signer, err := note.NewSigner(strings.TrimSpace(string(readFile(skeyFile))))
	if err != nil {
		fail("signer key: %v", err)
	}
	msg, err := note.Sign(&note.Note{Text: string(readFile(textFile))}, signer)
	if err != nil {
		fail("sign: %v", err)
	}
	os.Stdout.Write(msg)
}

func verify(vkeyFile, noteFile string) {
	var verifiers []note.Verifier
	for _, line := range strings.Split(string(readFile(vkeyFile)), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		v, err := note.NewVerifier(line)
		if err != nil {
			fail("verifier key %q: %v", line, err)
		}
		verifiers = append(verifiers, v)
	}
	if len(verifiers) == 0 {
		fail("no verifier key in %s", vkeyFile)
	}
	n, err := note.Open(readFile(noteFile), note.VerifierList(verifiers...))
	if err != nil {
		fail("open: %v", err)
	}
	for _, s := range n.Sigs {
		fmt.Fprintf(os.Stderr, "verified signature: %s %08x\n", s.Name, s.Hash)
	}
	os.Stdout.WriteString(n.Text)
}

func main() {
	args := os.Args[1:]
	switch {
	case len(args) == 3 && args[0] == "-sign":
		sign(args[1], args[2])
	case len(args) == 2:
		verify(args[0], args[1])
	default:
		fmt.Fprintln(os.Stderr, "usage: verify_note VKEY_FILE NOTE_FILE | verify_note -sign SKEY_FILE TEXT_FILE")
		os.Exit(2)
	}
}
