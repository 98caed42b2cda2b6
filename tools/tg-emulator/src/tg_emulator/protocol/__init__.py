"""MTProto 2.0 server side: TcpFull framing, auth-key handshake, encryption, hand-written core TL."""
