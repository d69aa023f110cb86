package chstorage

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/ch-go"
	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
)

// Block readers: a reader of many rows (an export) decodes ClickHouse's
// native blocks column by column with ch-go (github.com/ClickHouse/ch-go),
// the protocol library under clickhouse-go, instead of scanning row by row
// through driver.Rows. It sends a statement's text as is: 18.16 has no
// server-side parameters, so Render puts the arguments into the text as
// literals.

// ErrNotNative is DialNative's answer for a configuration that reaches
// ClickHouse over HTTP, which ch-go does not speak.
var ErrNotNative = errors.New("clickhouse: the block reader needs the native protocol")

// NativeClient is a ch-go connection DialNative opened.
type NativeClient struct {
	*ch.Client
	conn *clientInfoConn
}

// Do runs a query (see ch.Client.Do).
func (c *NativeClient) Do(ctx context.Context, q ch.Query) error {
	c.conn.arm()
	return c.Client.Do(ctx, q)
}

// DialNative opens a ch-go connection with c's address, credentials, TLS
// and compression: to the first of c's addresses that answers (a cluster's
// nodes are tried in order, like Open). The caller closes it.
//
// ch-go drops query settings on servers that take them only in binary form
// (18.16): a query's time limit there is its context's deadline, which
// cancels the query on the server.
func DialNative(ctx context.Context, c Config) (*NativeClient, error) {
	if c.Protocol == ProtocolHTTP {
		return nil, ErrNotNative
	}
	password, err := c.password()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	comp := ch.CompressionDisabled
	if c.Compression == "lz4" {
		comp = ch.CompressionLZ4
	}
	if len(c.Addrs()) == 0 {
		return nil, fmt.Errorf("clickhouse dial: no address in %q", c.Addr)
	}
	var errs []error
	for _, addr := range c.Addrs() {
		d := &nativeDialer{tls: tlsCfg}
		client, err := ch.Dial(ctx, ch.Options{
			Address:     addr,
			Database:    c.Database,
			User:        c.Username,
			Password:    password,
			Compression: comp,
			Dialer:      d,
			ClientName:  "keyfleet",
			DialTimeout: 5 * time.Second,
			ReadTimeout: 60 * time.Second,
		})
		if err == nil {
			if rev := client.ServerInfo().Revision; rev < proto.FeatureClientWriteInfo.Version() {
				d.conn.revision = min(rev, proto.Version)
			}
			return &NativeClient{Client: client, conn: d.conn}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("clickhouse dial: %w", errors.Join(errs...))
}

// nativeDialer dials ch-go's connection (TLS, if configured, here: ch-go
// would put it around this dialer's connection) and wraps it in a
// clientInfoConn.
type nativeDialer struct {
	tls  *tls.Config
	conn *clientInfoConn
}

func (d *nativeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: 5 * time.Second}
	var conn net.Conn
	var err error
	if d.tls != nil {
		conn, err = (&tls.Dialer{NetDialer: nd, Config: d.tls}).DialContext(ctx, network, addr)
	} else {
		conn, err = nd.DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	d.conn = &clientInfoConn{Conn: conn}
	return d.conn, nil
}

// clientInfoConn adds the client info to the query packets ch-go sends to
// a server older than protocol revision 54420 (ClickHouse 18.16 is 54413).
// ch-go writes a query's client info only from that revision on, while
// the server reads it from revision 54032 on (ClickHouse's
// TCPHandler::receiveQuery): without it, 18.16 reads the settings from the
// wrong place and refuses the query (UNKNOWN_SETTING). Everything else
// ch-go writes and reads is right for 18.16. A query packet is the start of
// the first write after arm (ch-go flushes it, with the empty external-data
// block after it, in one write): its code (1), the query id, then — here —
// the client info.
type clientInfoConn struct {
	net.Conn
	revision int // the server's, when below 54420; 0: nothing to add
	armed    bool
	buf      proto.Buffer
}

func (c *clientInfoConn) arm() { c.armed = c.revision != 0 }

func (c *clientInfoConn) Write(p []byte) (int, error) {
	if !c.armed {
		return c.Conn.Write(p)
	}
	c.armed = false
	code, n := binary.Uvarint(p)
	if n <= 0 || code != uint64(proto.ClientCodeQuery) {
		return 0, fmt.Errorf("clickhouse: expected a query packet, got %d bytes starting %x", len(p), p[:min(len(p), 8)])
	}
	idLen, m := binary.Uvarint(p[n:])
	if m <= 0 || idLen > uint64(len(p)-n-m) {
		return 0, errors.New("clickhouse: query packet: bad query id")
	}
	head := n + m + int(idLen)
	id := string(p[n+m : head])
	c.buf.Reset()
	c.buf.Buf = append(c.buf.Buf, p[:head]...)
	proto.ClientInfo{
		ProtocolVersion: c.revision,
		Major:           1,
		Interface:       proto.InterfaceTCP,
		Query:           proto.ClientQueryInitial,
		InitialQueryID:  id,
		InitialAddress:  c.LocalAddr().String(),
		ClientName:      "keyfleet",
	}.EncodeAware(&c.buf, c.revision)
	c.buf.Buf = append(c.buf.Buf, p[head:]...)
	if _, err := c.Conn.Write(c.buf.Buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Render binds args and returns the statement's text with every argument
// written in as a SQL literal (strings quoted and escaped), for a client
// that sends the text as is (ch-go). It takes what the statements pass:
// strings, integers, booleans, time.Time (a DateTime), fmt.Stringer (a
// UUID), and Set/Array arguments of those.
func (s *Statement) Render(args Args) (string, error) {
	sql, vals, err := s.Bind(args)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(sql))
	next := 0
	scanSQL(sql, func(i int, code bool) {
		if err != nil {
			return
		}
		if !code || sql[i] != '?' {
			b.WriteByte(sql[i])
			return
		}
		if next >= len(vals) {
			err = fmt.Errorf("%s: more placeholders than arguments", s.Name)
			return
		}
		err = appendLiteral(&b, vals[next])
		next++
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.Name, err)
	}
	if next != len(vals) {
		return "", fmt.Errorf("%s: %d arguments for %d placeholders", s.Name, len(vals), next)
	}
	return b.String(), nil
}

// quoteReplacer escapes a string literal's content: a backslash and the
// quote; every other byte stands for itself inside '…'.
var quoteReplacer = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

func appendLiteral(b *strings.Builder, v any) error {
	switch x := v.(type) {
	case string:
		b.WriteByte('\'')
		_, _ = quoteReplacer.WriteString(b, x)
		b.WriteByte('\'')
		return nil
	case bool:
		if x {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
		return nil
	case time.Time:
		b.WriteString("toDateTime(" + strconv.FormatInt(x.Unix(), 10) + ")")
		return nil
	case clickhouse.GroupSet:
		return appendList(b, '(', ')', x.Value)
	case fmt.Stringer:
		return appendLiteral(b, x.String())
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(rv.Int(), 10))
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(strconv.FormatUint(rv.Uint(), 10))
		return nil
	case reflect.String:
		return appendLiteral(b, rv.String())
	case reflect.Slice:
		items := make([]any, rv.Len())
		for i := range items {
			items[i] = rv.Index(i).Interface()
		}
		return appendList(b, '[', ']', items)
	}
	return fmt.Errorf("no literal for a %T", v)
}

func appendList(b *strings.Builder, open, closing byte, items []any) error {
	b.WriteByte(open)
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		if err := appendLiteral(b, it); err != nil {
			return err
		}
	}
	b.WriteByte(closing)
	return nil
}
