/*
 * withSignalsBlocked(fn): calls fn with every signal blocked on the calling thread, then restores
 * the thread's mask. A thread starts with its creator's mask, so threads that fn creates (libfuse's,
 * here) never run a signal handler. See src/mount/fuseThreadSignals.ts for why that matters.
 *
 * Node-API is a stable C ABI that the node binary exports; the handful of declarations used are
 * written out below, so this builds with a C compiler and libc headers alone (no node headers).
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef int napi_status; /* napi_ok is 0 */

extern napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *argc, napi_value *argv, napi_value *this_arg, void **data);
extern napi_status napi_get_global(napi_env, napi_value *result);
extern napi_status napi_call_function(napi_env, napi_value recv, napi_value func, size_t argc, const napi_value *argv, napi_value *result);
extern napi_status napi_create_function(napi_env, const char *name, size_t length, napi_callback cb, void *data, napi_value *result);
extern napi_status napi_set_named_property(napi_env, napi_value object, const char *name, napi_value value);
extern napi_status napi_throw_error(napi_env, const char *code, const char *msg);

static napi_value with_signals_blocked(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value fn = NULL, global, result = NULL;
  if (napi_get_cb_info(env, info, &argc, &fn, NULL, NULL) != 0 || argc < 1 || napi_get_global(env, &global) != 0) {
    napi_throw_error(env, NULL, "withSignalsBlocked expects a function");
    return NULL;
  }
  sigset_t all, saved;
  sigfillset(&all);
  if (pthread_sigmask(SIG_SETMASK, &all, &saved) != 0) {
    napi_throw_error(env, NULL, "pthread_sigmask failed");
    return NULL;
  }
  /* A throw inside fn stays pending and reaches the caller once this returns. */
  napi_call_function(env, global, fn, 0, NULL, &result);
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  return result;
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "withSignalsBlocked", SIZE_MAX, with_signals_blocked, NULL, &fn) == 0)
    napi_set_named_property(env, exports, "withSignalsBlocked", fn);
  return exports;
}
