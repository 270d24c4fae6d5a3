"""SIP trunks: signalling (messages, SDP, transactions, dialogs) and media (RTP, RTCP, RFC 4733), sans-I/O."""
