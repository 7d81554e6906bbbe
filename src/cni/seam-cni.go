// seam-cni: the CNI plugin (spec 1.1). A thin shim: it reads the network
// configuration on stdin and the CNI_* variables, forwards them to the local
// agent over its unix socket, and prints the agent's answer. The agent does
// all the work; this only has to start fast and need nothing on the node:
// a static Go binary starts in about a millisecond, where Node.js took
// 40 ms and had to be on the kubelet's PATH (docs/cni.md says why Go).
//
// Built by scripts/build-cni.sh, which sets supportedVersions from
// src/contract/cni-versions.json (the one list the agent reads too).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// supportedVersions is set at build time (-ldflags -X) from the contract's list.
var supportedVersions = `["1.1.0"]`

const defaultSocket = "/run/seam/cni.sock"

type cniError struct {
	CniVersion string `json:"cniVersion"`
	Code       int    `json:"code"`
	Msg        string `json:"msg"`
	Details    string `json:"details"`
}

func fail(code int, msg, details, version string) {
	if version == "" {
		version = "1.1.0"
	}
	out, _ := json.Marshal(cniError{version, code, msg, details})
	os.Stdout.Write(append(out, '\n'))
	if code > 0 && code < 256 {
		os.Exit(code)
	}
	os.Exit(1)
}

func supported() []string {
	var v []string
	if err := json.Unmarshal([]byte(supportedVersions), &v); err != nil {
		fail(999, "seam-cni was built with an unreadable list of CNI versions", err.Error(), "")
	}
	return v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// errnoName gives the short name Node's errors carry (ENOENT, ECONNREFUSED), which is what operators grep for.
func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT:
			return "ENOENT"
		case syscall.ECONNREFUSED:
			return "ECONNREFUSED"
		case syscall.EACCES:
			return "EACCES"
		}
	}
	return err.Error()
}

func main() {
	command := os.Getenv("CNI_COMMAND")
	var stdin []byte
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice == 0 {
		stdin, _ = io.ReadAll(os.Stdin)
	}
	versions := supported()
	if command == "VERSION" {
		wanted := "1.1.0"
		var probe struct {
			CniVersion string `json:"cniVersion"`
		}
		if len(bytes.TrimSpace(stdin)) > 0 && json.Unmarshal(stdin, &probe) == nil && probe.CniVersion != "" {
			wanted = probe.CniVersion
		}
		out, _ := json.Marshal(struct {
			CniVersion        string   `json:"cniVersion"`
			SupportedVersions []string `json:"supportedVersions"`
		}{wanted, versions})
		os.Stdout.Write(append(out, '\n'))
		return
	}
	if command == "" {
		fail(4, "CNI_COMMAND is not set", "one of ADD, DEL, CHECK, STATUS, GC, VERSION", "")
	}
	var config map[string]json.RawMessage
	if err := json.Unmarshal(stdin, &config); err != nil {
		if json.Valid(stdin) {
			fail(6, "failed to decode the network configuration", "a JSON object is required", "")
		}
		fail(6, "failed to decode the network configuration", err.Error(), "")
	}
	if config == nil {
		fail(6, "failed to decode the network configuration", "a JSON object is required", "")
	}
	var version string
	if raw, ok := config["cniVersion"]; !ok || json.Unmarshal(raw, &version) != nil || !contains(versions, version) {
		fail(1, fmt.Sprintf("incompatible CNI version %s", strings.TrimSpace(string(orNull(raw)))), "supported: "+strings.Join(versions, ", "), "")
	}
	env := map[string]string{}
	for _, k := range []string{"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	socket := defaultSocket
	var s string
	if raw, ok := config["agentSocket"]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
		socket = s
	}
	request, _ := json.Marshal(struct {
		Env    map[string]string          `json:"env"`
		Config map[string]json.RawMessage `json:"config"`
	}{env, config})
	reply, err := ask(socket, append(request, '\n'))
	if err != nil {
		if command == "STATUS" {
			fail(50, "the Seam agent is not reachable", socket+": "+errnoName(err), version)
		}
		fail(11, "the Seam agent is not reachable; try again later", socket+": "+errnoName(err), version)
	}
	var answer struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Msg     string `json:"msg"`
			Details string `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply, &answer); err != nil {
		fail(5, "the Seam agent sent an unreadable answer", string(reply[:min(len(reply), 200)]), version)
	}
	if answer.Error != nil {
		fail(answer.Error.Code, answer.Error.Msg, answer.Error.Details, version)
	}
	if len(answer.Result) > 0 && string(answer.Result) != "null" {
		var out bytes.Buffer
		if json.Compact(&out, answer.Result) != nil {
			fail(5, "the Seam agent sent an unreadable answer", string(answer.Result[:min(len(answer.Result), 200)]), version)
		}
		out.WriteByte('\n')
		os.Stdout.Write(out.Bytes())
	}
}

// ask sends one request and reads the agent's whole answer (it closes when done).
func ask(socket string, request []byte) ([]byte, error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.Write(request); err != nil {
		return nil, err
	}
	conn.(*net.UnixConn).CloseWrite()
	return io.ReadAll(conn)
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("undefined")
	}
	return raw
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
