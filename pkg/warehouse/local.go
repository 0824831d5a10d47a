package warehouse

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ErrNoServerBinary is returned by StartLocal when no ClickHouse server
// binary is installed.
var ErrNoServerBinary = errors.New("no clickhouse-server binary found in PATH, /usr/sbin or /usr/bin: " +
	"install it (Debian: apt-get install -y clickhouse-server clickhouse-client, or scripts/install-clickhouse.sh), " +
	"or point verdict at a running server with VERDICT_CLICKHOUSE_ADDR")

// LocalConfig says how to run a private ClickHouse server.
type LocalConfig struct {
	// Engine is what runs: Server (an installed clickhouse-server binary;
	// the zero value) or ChDB (ClickHouse 26 from libchdb.so).
	Engine Engine
	// Binary is the server to run. Default: clickhouse-server from PATH,
	// /usr/sbin or /usr/bin, else the single "clickhouse" binary of current
	// releases, run as "clickhouse server". Engine Server only.
	Binary string
	// ChDBLib is libchdb.so for Engine ChDB; default: what FindChDBLib finds.
	ChDBLib string
	// ChDBCommand is the launcher for Engine ChDB, a command that runs
	// chdb.Main with the arguments StartLocal appends: `verdict
	// chdb-server` (bin/verdict runs itself), or a build of
	// chdb/cmd/chdb-server. Required for ChDB.
	ChDBCommand []string
	// Addr is host:port of the native protocol; default 127.0.0.1:9000.
	// The host is the server's listen_host.
	Addr string
	// HTTPAddr is host:port of the HTTP interface. Default: none. verdict
	// speaks only the native protocol, and a second port is one more to
	// collide; set it for tools that need HTTP. Engine Server only.
	HTTPAddr string
	// DataDir holds everything the server writes, under DataDir/clickhouse
	// (Engine Server) or DataDir/chdb (ChDB: ClickHouse 26 cannot be
	// started on 18.16's files and back): its data (the directory itself),
	// the generated config (etc/) and its logs (log/). Required. Starting
	// again on the same DataDir finds the data again.
	DataDir string
	// User and Password, when Password is set, are the server's only user
	// (User defaults to "default"); without a password the default user
	// needs none. Engine Server only: ChDB has no users but default.
	User, Password string
	// TLS, when set, also serves the native protocol over TLS (ClickHouse's
	// tcp_port_secure) on the same host. Engine Server only.
	TLS *LocalTLS
	// Cluster, when set, makes the server a node of a cluster. Engine
	// Server only.
	Cluster *LocalCluster
	// StartTimeout bounds the wait for the first successful ping; default 30s.
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// LocalCluster makes a local server a node of a cluster: its
// remote_servers entry, ZooKeeper (for ON CLUSTER DDL and replication),
// and the {shard} and {replica} macros of this node.
type LocalCluster struct {
	Name      string
	Shards    [][]string // native host:port of each shard's replicas
	ZooKeeper []string   // host:port of each ZooKeeper node
	Shard     string     // this node's {shard}
	Replica   string     // this node's {replica}
	// InterserverPort is the HTTP port replicas fetch parts from each
	// other on; needed when a shard has more than one replica.
	InterserverPort int
}

// LocalTLS is the local server's TLS port and its certificate.
type LocalTLS struct {
	Port              int
	CertFile, KeyFile string
}

// Local is a ClickHouse server process started by StartLocal.
type Local struct {
	addr    string
	engine  Engine
	dir     string
	cmd     *exec.Cmd
	stdin   io.Closer // ChDB: closing it stops the server
	logger  *slog.Logger
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	stop    sync.Once
	stopErr error
}

// StartLocal writes a config for a private server under cfg.DataDir, starts
// the server as a child process in its own process group and waits until it
// answers a native ping. The process runs until Stop, not until ctx ends; ctx
// bounds only the start. On Linux the server gets SIGTERM if the process
// that started it dies, so none is left running (ChDB's also sees its
// standard input end).
func StartLocal(ctx context.Context, cfg LocalConfig) (*Local, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("start local clickhouse: DataDir is empty")
	}
	var (
		l   *Local
		err error
	)
	switch cfg.Engine {
	case Server, "":
		l, err = serverProcess(cfg)
	case ChDB:
		l, err = chdbProcess(cfg)
	default:
		err = fmt.Errorf("local clickhouse engine %q: want %s or %s", cfg.Engine, ChDB, Server)
	}
	if err != nil {
		return nil, err
	}
	if Reachable(ctx, cfg.Addr) {
		return nil, fmt.Errorf("start local clickhouse: a ClickHouse server already answers at %s; use it, or choose another address", cfg.Addr)
	}
	out, err := os.OpenFile(filepath.Join(l.LogDir(), "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	cmd := l.cmd
	cmd.Dir = l.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	l.addr, l.logger, l.done = cfg.Addr, cfg.Logger, make(chan struct{})
	began := time.Now()
	if err := cmd.Start(); err != nil {
		if l.stdin != nil {
			l.stdin.Close()
		}
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() {
		l.waitErr = cmd.Wait()
		close(l.done)
	}()
	cfg.Logger.Info("clickhouse starting", "engine", l.engine, "command", cmd.Path, "addr", cfg.Addr, "data_dir", l.dir, "pid", cmd.Process.Pid)

	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if Reachable(ctx, cfg.Addr) {
			select {
			case <-l.done: // another server answers at Addr; ours died
			default:
				cfg.Logger.Info("clickhouse ready", "engine", l.engine, "addr", cfg.Addr, "seconds", time.Since(began).Seconds())
				return l, nil
			}
		}
		select {
		case <-l.done:
			return nil, fmt.Errorf("local clickhouse (%s) exited during start (%v); log %s:\n%s", l.engine, l.waitErr, l.LogDir(), l.logTail())
		case <-ctx.Done():
			l.Stop(context.Background())
			return nil, fmt.Errorf("local clickhouse (%s) at %s did not answer within %v: %w; log %s:\n%s",
				l.engine, cfg.Addr, cfg.StartTimeout, ctx.Err(), l.LogDir(), l.logTail())
		case <-tick.C:
		}
	}
}

// serverProcess prepares a clickhouse-server process: its config written
// under DataDir/clickhouse.
func serverProcess(cfg LocalConfig) (*Local, error) {
	bin, args, err := serverCommand(cfg.Binary)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "clickhouse"))
	if err != nil {
		return nil, err
	}
	configFile, err := writeConfig(dir, cfg.Addr, cfg.HTTPAddr, cfg.TLS, cfg.User, cfg.Password, cfg.Cluster)
	if err != nil {
		return nil, fmt.Errorf("write clickhouse config: %w", err)
	}
	return &Local{engine: Server, dir: dir, cmd: exec.Command(bin, append(args, "--config-file="+configFile)...)}, nil
}

// Addr is host:port of the server's native protocol.
func (l *Local) Addr() string { return l.addr }

// LogDir is the directory of the server's logs.
func (l *Local) LogDir() string { return filepath.Join(l.dir, "log") }

// Done is closed when the server process has exited, asked to or not.
func (l *Local) Done() <-chan struct{} { return l.done }

// Err says why the process exited; nil before it has.
func (l *Local) Err() error {
	select {
	case <-l.done:
		return l.waitErr
	default:
		return nil
	}
}

// Stop asks the server to stop (SIGTERM to the server's process group; for
// ChDB, the end of its standard input) and waits for it to exit; when ctx
// ends first (or after 30 seconds if ctx has no deadline) it sends SIGKILL. The data stays: StartLocal with the same DataDir and Addr starts
// the server again. Stop is safe to call more than once.
func (l *Local) Stop(ctx context.Context) error {
	l.stop.Do(func() { l.stopErr = l.terminate(ctx) })
	return l.stopErr
}

func (l *Local) terminate(ctx context.Context) error {
	select {
	case <-l.done:
		return nil // already gone
	default:
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	began := time.Now()
	pid := l.cmd.Process.Pid
	if l.stdin != nil {
		// ChDB ends its serving query when its input ends and shuts the
		// engine down in order; SIGTERM would end the process at once.
		l.stdin.Close()
	} else {
		signalGroup(pid, syscall.SIGTERM)
	}
	select {
	case <-l.done:
		l.logger.Info("clickhouse stopped", "engine", l.engine, "addr", l.addr, "seconds", time.Since(began).Seconds())
		return nil
	case <-ctx.Done():
	}
	signalGroup(pid, syscall.SIGKILL)
	<-l.done
	l.logger.Warn("clickhouse killed", "addr", l.addr, "reason", ctx.Err())
	return fmt.Errorf("clickhouse-server did not stop on SIGTERM, killed: %w", ctx.Err())
}

// signalGroup signals the process group the server leads, and the server
// itself should it not lead one.
func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil {
		syscall.Kill(pid, sig)
	}
}

// LogTail returns the end of the server's error log and of its console
// output: where a failed start, or a crash, says why.
func (l *Local) LogTail() string { return l.logTail() }

// Fatal says whether the server has logged a fatal error: chDB's server
// logs one, then takes seconds to end its process, refusing queries
// meanwhile.
func (l *Local) Fatal() bool {
	if l.engine != ChDB {
		return false
	}
	return grepFile(filepath.Join(l.LogDir(), "clickhouse-server.log"), "<Fatal>", 1) != ""
}

// logTail returns the end of the server's error log and of its console
// output, where a failed start says why.
func (l *Local) logTail() string {
	var b strings.Builder
	names := []string{"clickhouse-server.err.log", "stderr.log"}
	if l.engine == ChDB { // no error log of its own: the fatal lines are in its log
		names = []string{"clickhouse-server.log", "stderr.log"}
	}
	for _, name := range names {
		if tail := tailFile(filepath.Join(l.LogDir(), name), 20); tail != "" {
			fmt.Fprintf(&b, "--- %s\n%s", name, tail)
		}
	}
	if l.engine == ChDB {
		// A crash's reason is at the head of its Fatal lines, which a
		// long stack trace pushes out of the tail.
		if fatal := grepFile(filepath.Join(l.LogDir(), "clickhouse-server.log"), "<Fatal>", 8); fatal != "" {
			fmt.Fprintf(&b, "--- the first fatal lines\n%s", fatal)
		}
	}
	return b.String()
}

// grepFile returns the first n lines of name that contain s.
func grepFile(name, s string, n int) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	var out strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && n > 0 {
		if strings.Contains(sc.Text(), s) {
			out.WriteString(sc.Text() + "\n")
			n--
		}
	}
	return out.String()
}

func tailFile(name string, lines int) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 8 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	all := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	if len(all) == 1 && len(all[0]) == 0 {
		return ""
	}
	return string(bytes.Join(all, []byte("\n"))) + "\n"
}

// Reachable reports whether a ClickHouse server answers on the native
// protocol at addr. A server that refuses the default user's credentials
// still counts: something is there, and starting a local server on its port
// would fail.
func Reachable(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:     clickhouse.Native,
		Addr:         []string{addr},
		DialTimeout:  time.Second,
		MaxOpenConns: 1,
	})
	if err != nil {
		return false
	}
	defer conn.Close()
	err = conn.Ping(ctx)
	var ex *clickhouse.Exception
	return err == nil || errors.As(err, &ex)
}

// serverCommand finds the server binary and the arguments it needs.
func serverCommand(bin string) (string, []string, error) {
	if bin != "" {
		p, err := exec.LookPath(bin)
		if err != nil {
			return "", nil, fmt.Errorf("clickhouse server binary %q: %w", bin, err)
		}
		if filepath.Base(p) == "clickhouse" {
			return p, []string{"server"}, nil
		}
		return p, nil, nil
	}
	for _, c := range []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil, nil
		}
	}
	for _, c := range []string{"clickhouse", "/usr/bin/clickhouse"} {
		if p, err := exec.LookPath(c); err == nil {
			return p, []string{"server"}, nil
		}
	}
	return "", nil, ErrNoServerBinary
}

// The config is the least that starts 18.16 without errors in its log: data
// paths under dir, logs to files, one native port, a passwordless default
// user and empty profile and quota. No interserver port (no replication),
// no query_log, caches kept small (the defaults reserve gigabytes), and UTC
// so clickhouse-client shows times as stored. The root element <yandex> is
// what 18.16 reads; current releases still accept it.
var configTemplate = template.Must(template.New("config.xml").Parse(`<?xml version="1.0"?>
<!-- Generated by verdict at every start of the local server; edits are lost. -->
<yandex>
    <logger>
        <level>information</level>
        <log>{{.Dir}}/log/clickhouse-server.log</log>
        <errorlog>{{.Dir}}/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>{{.Host}}</listen_host>
    <tcp_port>{{.Port}}</tcp_port>
{{- if .HTTPPort}}
    <http_port>{{.HTTPPort}}</http_port>
{{- end}}
{{- if .TLS.Port}}
    <tcp_port_secure>{{.TLS.Port}}</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>{{.TLS.CertFile}}</certificateFile>
            <privateKeyFile>{{.TLS.KeyFile}}</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
{{- end}}
    <path>{{.Dir}}/</path>
    <tmp_path>{{.Dir}}/tmp/</tmp_path>
    <user_files_path>{{.Dir}}/user_files/</user_files_path>
    <format_schema_path>{{.Dir}}/format_schemas/</format_schema_path>
    <users_config>{{.Dir}}/etc/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
{{- with .Cluster}}
    <remote_servers>
        <{{.Name}}>
{{- range .Shards}}
            <shard>
                <internal_replication>true</internal_replication>
{{- range .}}
                <replica><host>{{.Host}}</host><port>{{.Port}}</port>{{if $.Password}}<user>{{$.User}}</user><password>{{$.Password}}</password>{{end}}</replica>
{{- end}}
            </shard>
{{- end}}
        </{{.Name}}>
    </remote_servers>
    <zookeeper>
{{- range .ZooKeeper}}
        <node><host>{{.Host}}</host><port>{{.Port}}</port></node>
{{- end}}
    </zookeeper>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
    <macros><shard>{{.Shard}}</shard><replica>{{.Replica}}</replica></macros>
{{- if .InterserverPort}}
    <interserver_http_host>{{$.Host}}</interserver_http_host>
    <interserver_http_port>{{.InterserverPort}}</interserver_http_port>
{{- end}}
{{- end}}
</yandex>
`))

var usersTemplate = template.Must(template.New("users.xml").Parse(`<?xml version="1.0"?>
<!-- Generated by verdict at every start of the local server; edits are lost.
     {{if .PasswordSHA256}}The one user needs its password{{else}}The default user has no password: the server
     listens only where LocalConfig.Addr says (127.0.0.1 by default){{end}}. -->
<yandex>
    <profiles>
        <default>
            <!-- An idle connection notices a shutdown only at this poll
                 interval: the default 10 s made every Stop take 10 s
                 while a client held a connection. -->
            <poll_interval>1</poll_interval>
        </default>
    </profiles>
    <users>
        <{{.User}}>
{{- if .PasswordSHA256}}
            <password_sha256_hex>{{.PasswordSHA256}}</password_sha256_hex>
{{- else}}
            <password></password>
{{- end}}
            <networks><ip>::/0</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{{.User}}>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
`))

// writeConfig creates dir's layout and writes config.xml and users.xml; it
// returns the path of config.xml.
func writeConfig(dir, addr, httpAddr string, tlsCfg *LocalTLS, user, password string, cluster *LocalCluster) (string, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return "", err
	}
	var httpPort int
	if httpAddr != "" {
		httpHost, p, err := splitAddr(httpAddr)
		if err != nil {
			return "", err
		}
		if httpHost != host {
			return "", fmt.Errorf("HTTP address %s: host must be the native address's, %s", httpAddr, host)
		}
		httpPort = p
	}
	if strings.ContainsAny(dir, "<>&\"'") {
		return "", fmt.Errorf("data directory %q: characters <>&\"' are not supported", dir)
	}
	for _, sub := range []string{"etc", "log", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return "", err
		}
	}
	var b bytes.Buffer
	if tlsCfg == nil {
		tlsCfg = &LocalTLS{}
	}
	if strings.ContainsAny(tlsCfg.CertFile+tlsCfg.KeyFile, "<>&\"'") {
		return "", fmt.Errorf("TLS files %q, %q: characters <>&\"' are not supported", tlsCfg.CertFile, tlsCfg.KeyFile)
	}
	if user == "" || password == "" {
		user = "default"
	}
	if !userName.MatchString(user) {
		return "", fmt.Errorf("clickhouse user %q: want letters, digits and _", user)
	}
	if strings.ContainsAny(password, "<>&\"'") {
		return "", errors.New("clickhouse password: characters <>&\"' are not supported")
	}
	cl, err := clusterConfig(cluster)
	if err != nil {
		return "", err
	}
	err = configTemplate.Execute(&b, struct {
		Dir, Host      string
		Port, HTTPPort int
		TLS            LocalTLS
		Cluster        *clusterXML
		User, Password string
	}{dir, host, port, httpPort, *tlsCfg, cl, user, password})
	if err != nil {
		return "", err
	}
	configFile := filepath.Join(dir, "etc", "config.xml")
	if err := os.WriteFile(configFile, b.Bytes(), 0o600); err != nil { // remote_servers may hold the password
		return "", err
	}
	var sum string
	if password != "" {
		h := sha256.Sum256([]byte(password))
		sum = hex.EncodeToString(h[:])
	}
	b.Reset()
	if err := usersTemplate.Execute(&b, struct{ User, PasswordSHA256 string }{user, sum}); err != nil {
		return "", err
	}
	// Only the server's owner reads the password's hash.
	if err := os.WriteFile(filepath.Join(dir, "etc", "users.xml"), b.Bytes(), 0o600); err != nil {
		return "", err
	}
	return configFile, nil
}

// clusterXML is a LocalCluster as the config template writes it.
type clusterXML struct {
	Name, Shard, Replica string
	Shards               [][]hostPortXML
	ZooKeeper            []hostPortXML
	InterserverPort      int
}

type hostPortXML struct {
	Host string
	Port int
}

func clusterConfig(c *LocalCluster) (*clusterXML, error) {
	if c == nil {
		return nil, nil
	}
	if !clusterPattern.MatchString(c.Name) || !macroPattern.MatchString(c.Shard) || !macroPattern.MatchString(c.Replica) {
		return nil, fmt.Errorf("cluster %q, shard %q, replica %q: want names of letters, digits and _", c.Name, c.Shard, c.Replica)
	}
	if len(c.Shards) == 0 || len(c.ZooKeeper) == 0 {
		return nil, fmt.Errorf("cluster %s: want shards and ZooKeeper", c.Name)
	}
	x := &clusterXML{Name: c.Name, Shard: c.Shard, Replica: c.Replica, InterserverPort: c.InterserverPort}
	hp := func(addr string) (hostPortXML, error) {
		h, p, err := splitAddr(addr)
		return hostPortXML{h, p}, err
	}
	for _, sh := range c.Shards {
		var rs []hostPortXML
		for _, a := range sh {
			r, err := hp(a)
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		x.Shards = append(x.Shards, rs)
	}
	for _, a := range c.ZooKeeper {
		z, err := hp(a)
		if err != nil {
			return nil, err
		}
		x.ZooKeeper = append(x.ZooKeeper, z)
	}
	return x, nil
}

var macroPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

var userName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if strings.ContainsAny(host, "<>&\"'") {
		return "", 0, fmt.Errorf("address %q: bad host", addr)
	}
	return host, port, nil
}
