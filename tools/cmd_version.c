/* cmd_version.c: `tlsshim version`: the tlsshim version, the wolfSSL it is built with, whether AES-NI is
 * in use (compiled in, per wolfSSL's options.h, and supported by this CPU, per cpuid), and which library
 * `tlsshim run` would preload. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "tools/cli.h"

#include <cpuid.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: tlsshim version\n\n"
    "Prints the tlsshim version, the wolfSSL version, whether AES-NI is in use, and the\n"
    "library `tlsshim run` preloads.\n";

static bool cpu_has_aes(void)
{
	unsigned eax, ebx, ecx, edx;
	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return false;
	return (ecx & bit_AES) != 0;
}

int cmd_version(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (argc > 1)
		return cli_usage_error("version", "unexpected argument '%s'", argv[1]);
#ifdef WOLFSSL_AESNI
	const bool built = true;
#else
	const bool built = false;
#endif
	const bool cpu = cpu_has_aes();
	printf("tlsshim %s\n", TLSSHIM_VERSION);
#ifdef TLSSHIM_WOLFSSL_SYSTEM
	printf("wolfSSL %s (the system's shared library)\n", wolfSSL_lib_version());
#else
	printf("wolfSSL %s (statically linked)\n", wolfSSL_lib_version());
#endif
	if (built && cpu)
		printf("AES-NI: yes (built in, CPU supports it)\n");
	else if (built)
		printf("AES-NI: no (built in, but this CPU lacks it: AES runs in software)\n");
	else if (cpu)
		printf("AES-NI: no (not built in, although this CPU supports it: rebuild wolfSSL with "
		       "--enable-aesni)\n");
	else
		printf("AES-NI: no (not built in, and this CPU lacks it)\n");
	char lib[PATH_MAX * 2 + 64];
	if (cli_find_library(lib, sizeof(lib)) == 0)
		printf("library: %s\n", lib);
	else
		printf("library: not found (looked for %s)\n", lib);
	return CLI_OK;
}
