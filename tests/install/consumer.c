/*
 * consumer.c - a program built the way a user builds one: only the installed
 * headers and `pkg-config --cflags --libs zinv`, nothing from the source tree.
 * It proves the install is complete (headers, .pc, link chain) and that the
 * library it loads at run time is the one it was compiled against.
 */
#include <stdio.h>
#include <string.h>

#include <zinv.h>

static int fail(const char *what)
{
	fprintf(stderr, "install test: %s\n", what);
	return 1;
}

int main(void)
{
	static const char text[] = "0b7c1e5e-2f4a-11ef-9a4b-0242ac120002";
	char back[INV_UUID_STRLEN + 1];
	inv_uuid u;

	if (strcmp(inv_version(), INV_VERSION_STRING) != 0)
		return fail("inv_version() differs from the installed header");
	if (inv_uuid_parse(&u, text, strlen(text)) != 0)
		return fail("inv_uuid_parse() rejected a valid UUID");
	inv_uuid_format(&u, back);
	if (strcmp(back, text) != 0)
		return fail("UUID did not survive parse + format");
	if (inv_uuid_parse(&u, "nope", 4) != INV_EINVAL)
		return fail("inv_uuid_parse() accepted garbage");
	if (strcmp(inv_strerror(INV_EINVAL), inv_strerror(INV_ENOMEM)) == 0)
		return fail("inv_strerror() does not tell codes apart");
	printf("libzinv %s installed and linkable\n", inv_version());
	return 0;
}
