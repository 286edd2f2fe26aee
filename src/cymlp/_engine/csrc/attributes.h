/* Attributes the headers share.
 *
 * CYMLP_UNUSED marks a static function of a header that not every file
 * including the header calls: each of the engine's extensions includes the
 * headers its kernels need and calls part of what they define (the test
 * hooks' extension the quotients, _core the steps), and GCC and clang would
 * otherwise warn about the rest (an error in the -Dwerror=true build).
 */
#ifndef CYMLP_ATTRIBUTES_H
#define CYMLP_ATTRIBUTES_H

#if defined(__GNUC__) || defined(__clang__)
#define CYMLP_UNUSED __attribute__((unused))
#else
#define CYMLP_UNUSED
#endif

#endif
