#!/usr/bin/perl
# Plain (non-TLS) Perl clients for the compatibility suite; run under the shim, which adds TLS.
#   perl_client.pl inet HOST PORT NLINES   IO::Socket::INET: NLINES lines to an echo server,
#                                          shutdown(1), read everything back, compare
#   perl_client.pl tiny URL                HTTP::Tiny GET (an http:// URL)
# Prints one line "OK ..." (length and sha256) and exits 0; dies otherwise.
use strict;
use warnings;
use IO::Socket::INET;
use HTTP::Tiny;
use Digest::SHA qw(sha256_hex);

my $mode = shift @ARGV // '';
if ($mode eq 'inet') {
	my ($host, $port, $n) = @ARGV;
	my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => 15)
	  or die "connect $host:$port: $@ ($!)\n";
	my $sent = join('', map { "perl line $_ " . ('x' x ($_ % 97)) . "\n" } 1 .. $n);
	$s->autoflush(1);
	print $s $sent or die "write: $!\n";
	$s->shutdown(1) or die "shutdown: $!\n";
	my ($got, $buf) = ('', '');
	while (1) {
		my $r = sysread($s, $buf, 65536);
		die "read: $!\n" unless defined $r;
		last if $r == 0;
		$got .= $buf;
	}
	close $s;
	die sprintf("echo mismatch: sent %d bytes, got %d\n", length $sent, length $got) unless $got eq $sent;
	printf "OK inet %d %s\n", length $got, sha256_hex($got);
} elsif ($mode eq 'tiny') {
	my $r = HTTP::Tiny->new(timeout => 15)->get($ARGV[0]);
	die "HTTP::Tiny: $r->{status} $r->{reason}: " . ($r->{status} == 599 ? $r->{content} : '') . "\n"
	  unless $r->{success};
	printf "OK tiny %d %s\n", length $r->{content}, sha256_hex($r->{content});
} else {
	die "usage: perl_client.pl inet HOST PORT NLINES | tiny URL\n";
}
