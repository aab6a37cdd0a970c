/* openssl_suite.c — a suite built on OpenSSL 3: EVP digests and fetches, RSA key generation, HKDF
 * and the per-thread error queue fill OpenSSL's global method store, DRBG and thread-local state,
 * which it frees only at exit. Those tests must pass; two that really leak (a digest context, a
 * generated key) must fail at their line. test_plugin_openssl.c runs it in both fork modes. */
#include <check.h>
#include <tracemalloc-check.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/kdf.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <string.h>
#include <stdlib.h>

START_TEST(t_digest) {
  unsigned char md[EVP_MAX_MD_SIZE]; unsigned int n;
  EVP_MD_CTX *c = EVP_MD_CTX_new(); EVP_DigestInit_ex(c, EVP_sha256(), NULL); EVP_DigestUpdate(c, "abc", 3); EVP_DigestFinal_ex(c, md, &n); EVP_MD_CTX_free(c);
  EVP_MD *m = EVP_MD_fetch(NULL, "SHA3-256", NULL); EVP_MD_free(m);
}
END_TEST
START_TEST(t_rsa) {
  EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL); EVP_PKEY_keygen_init(c); EVP_PKEY_CTX_set_rsa_keygen_bits(c, 1024);
  EVP_PKEY *k = NULL; ck_assert_int_eq(EVP_PKEY_generate(c, &k), 1); EVP_PKEY_free(k); EVP_PKEY_CTX_free(c);
}
END_TEST
START_TEST(t_hkdf) {
  EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL); EVP_PKEY_derive_init(c); EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256());
  EVP_PKEY_CTX_set1_hkdf_salt(c, (const unsigned char *)"salt", 4); EVP_PKEY_CTX_set1_hkdf_key(c, (const unsigned char *)"key", 3);
  unsigned char out[32]; size_t len = sizeof out; ck_assert_int_eq(EVP_PKEY_derive(c, out, &len), 1); EVP_PKEY_CTX_free(c);
}
END_TEST
START_TEST(t_error_queue) { ERR_put_error(ERR_LIB_EVP, 0, 1, __FILE__, __LINE__); ERR_clear_error(); unsigned char b[16]; RAND_bytes(b, 16); }
END_TEST
START_TEST(l_ctx_leak) { EVP_MD_CTX *volatile c = EVP_MD_CTX_new(); /* site:ctx */ EVP_DigestInit_ex(c, EVP_sha256(), NULL); }
END_TEST
START_TEST(l_key_leak) { EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL); EVP_PKEY_keygen_init(c); EVP_PKEY_CTX_set_rsa_keygen_bits(c, 1024); EVP_PKEY *volatile k = NULL;
  EVP_PKEY_generate(c, (EVP_PKEY **)&k); /* site:key */
  EVP_PKEY_CTX_free(c); }
END_TEST
int main(void) {
  Suite *s = suite_create("OSSL"); TCase *c = tcase_create("Clean"); tcase_set_timeout(c, 60);
  tcase_add_checked_fixture(c, TM_LEAK_FIXTURE);
  tcase_add_test(c, t_digest); tcase_add_test(c, t_rsa); tcase_add_test(c, t_hkdf); tcase_add_test(c, t_error_queue); tcase_add_test(c, t_digest);
  suite_add_tcase(s, c);
  TCase *l = tcase_create("Leaks"); tcase_set_timeout(l, 60); tcase_add_checked_fixture(l, TM_LEAK_FIXTURE); tcase_add_test(l, l_ctx_leak); tcase_add_test(l, l_key_leak); suite_add_tcase(s, l);
  SRunner *sr = srunner_create(s); srunner_run_all(sr, CK_ENV); int f = srunner_ntests_failed(sr); srunner_free(sr); return f == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
