/* Unit tests for the fd table: every fd the kernel can hand out, lookups without a lock, stale entries. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>

#include "preload/fdtab.h"

/* fdtab only stores pointers: any distinct addresses serve as connections here. */
static char dummy[4];
#define C(i) ((struct conn *)&dummy[i])

Test(fdtab, empty_table_answers_null)
{
	cr_assert_null(fdtab_load(0));
	cr_assert_null(fdtab_load(123456));
	cr_assert_null(fdtab_load(-1));
	cr_assert_null(fdtab_load(FDTAB_MAX_FD));
}

Test(fdtab, store_load_take)
{
	cr_assert_null(fdtab_store(7, C(0)));
	cr_assert_eq(fdtab_load(7), C(0));
	cr_assert_null(fdtab_load(8));
	cr_assert_eq(fdtab_store(7, C(1)), C(0), "store returns what was there");
	cr_assert_eq(fdtab_take(7), C(1));
	cr_assert_null(fdtab_load(7));
	cr_assert_null(fdtab_take(7));
}

Test(fdtab, covers_fds_beyond_any_rlimit)
{
	int high[] = {FDTAB_CHUNK_SIZE - 1, FDTAB_CHUNK_SIZE, 1 << 20, FDTAB_MAX_FD - 1};
	for (size_t i = 0; i < sizeof(high) / sizeof(high[0]); i++) {
		cr_assert_null(fdtab_store(high[i], C(2)), "fd %d", high[i]);
		cr_assert_eq(fdtab_load(high[i]), C(2), "fd %d", high[i]);
		cr_assert_eq(fdtab_take(high[i]), C(2));
	}
}

Test(fdtab, out_of_range_fails_closed)
{
	cr_assert_eq(fdtab_store(-5, C(0)), (struct conn *)-1);
	cr_assert_eq(fdtab_store(FDTAB_MAX_FD, C(0)), (struct conn *)-1);
}

Test(fdtab, replace_only_if_expected)
{
	fdtab_store(40, C(0));
	cr_assert_not(fdtab_replace(40, C(1), C(2)));
	cr_assert_eq(fdtab_load(40), C(0));
	cr_assert(fdtab_replace(40, C(0), C(2)));
	cr_assert_eq(fdtab_load(40), C(2));
	fdtab_take(40);
}

Test(fdtab, next_skips_empty_chunks)
{
	fdtab_store(3, C(0));
	fdtab_store(5 * FDTAB_CHUNK_SIZE + 9, C(1));
	cr_assert_eq(fdtab_next(0, FDTAB_MAX_FD - 1), 3);
	cr_assert_eq(fdtab_next(4, FDTAB_MAX_FD - 1), 5 * FDTAB_CHUNK_SIZE + 9);
	cr_assert_eq(fdtab_next(4, 5 * FDTAB_CHUNK_SIZE), -1, "bounded by `to`");
	cr_assert_eq(fdtab_next(5 * FDTAB_CHUNK_SIZE + 10, FDTAB_MAX_FD - 1), -1);
	fdtab_take(3);
	fdtab_take(5 * FDTAB_CHUNK_SIZE + 9);
}

/* Threads on different fds (one chunk shared, one chunk each) never see each other's entries. */
static void *worker(void *arg)
{
	int base = (int)(intptr_t)arg;
	for (int round = 0; round < 2000; round++) {
		for (int k = 0; k < 16; k++) {
			int fd = base + k;
			if (fdtab_store(fd, C(k % 4)) != NULL)
				return (void *)1;
			if (fdtab_load(fd) != C(k % 4))
				return (void *)1;
		}
		for (int k = 0; k < 16; k++)
			if (fdtab_take(base + k) != C(k % 4))
				return (void *)1;
	}
	return NULL;
}

Test(fdtab, threads_on_different_fds)
{
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, worker,
			       (void *)(intptr_t)(100000 + i * (i % 2 ? 16 : FDTAB_CHUNK_SIZE)));
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_assert_null(r, "thread %d saw a wrong entry", i);
	}
}
