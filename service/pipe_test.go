package service

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The server's end of the in-process pipe accepts deadlines after the
// client has gone (fasthttp panics otherwise), and its reads then fail.
func TestPipeConnDeadlinesAfterClientClosed(t *testing.T) {
	l := newPipeListener()
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	client, err := l.Dial(context.Background())
	require.NoError(t, err)
	server := <-accepted
	require.NoError(t, client.Close())
	require.NoError(t, server.SetWriteDeadline(time.Now().Add(time.Minute)))
	require.NoError(t, server.SetReadDeadline(time.Now().Add(time.Minute)))
	require.NoError(t, server.SetDeadline(time.Now().Add(time.Minute)))
	_, err = server.Read(make([]byte, 1))
	require.Error(t, err)
}
