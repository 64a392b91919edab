/*
 * cadriver: a small EPICS Channel Access client built on the real libca.
 *
 * pvhub's interop tests run it against a CA server (normally pvhub's own, on
 * 127.0.0.1) and read what libca delivered. Every result is printed as one
 * JSON object per line on stdout, flushed at once; libca's own diagnostics go
 * to stderr. The Go side lives in package catest (drivers.go), and package cadriver builds it.
 *
 * Debian ships libca without its C headers, so this file declares the parts of
 * the libca C API and of the DBR structure layouts it uses itself, written from
 * the documented ABI (shared docs, ca-protocol.md section 5.2). The layouts
 * are checked against the documented offsets at compile time.
 *
 * Build: gcc -Wall -Wextra -Werror -O2 -o cadriver cadriver.c -lca
 *        (or -l:libca.so.4.13.5 when only the versioned library is present)
 *
 * USAGE
 *   cadriver get     [-d TYPE] [-c COUNT] [-w SEC] PV...
 *   cadriver put     [-d TYPE] [-c] [-S] [-w SEC] [-l SEC] PV [VALUE...]
 *   cadriver monitor [-d TYPE] [-c COUNT] [-m MASK] [-n EVENTS] [-t SEC]
 *                    [-s MS] PV...
 *   cadriver info    [-w SEC] PV...
 *   cadriver layout
 *
 *   Options come before the PVs: parsing stops at the first PV, so VALUEs
 *   such as -5 need no "--".
 *   TYPE   a DBR type number 0..38 or its name, in any case, with or
 *          without the DBR_ prefix (DBR_TIME_DOUBLE, time_double).
 *   get    ca_array_get_callback with TYPE (default: the native plain type)
 *          and COUNT (default: the native element count; 0 = current length).
 *   put    one VALUE or an array of VALUEs converted from text to TYPE
 *          (default DBR_STRING for one value, DBR_DOUBLE for several). For
 *          compound types the metadata is zero and the values sit at the
 *          type's value offset. -S sends the single VALUE as a DBR_CHAR array
 *          of its bytes plus a terminating NUL (like caput -S). -c uses
 *          ca_array_put_callback and waits for the completion; without -c
 *          ca_array_put + ca_flush_io is used, and the driver keeps
 *          processing events for -l seconds (default 0.2) to catch an
 *          asynchronous error from the server. With -d given, no VALUE
 *          means a put of zero elements.
 *   monitor ca_create_subscription on the first connection of every PV with
 *          TYPE (default DBR_TIME_<native>), COUNT (default 0) and MASK
 *          (default 5 = VALUE|ALARM; a number, or letters from "vlap").
 *          Prints every event, every connection change and every access
 *          rights change. Ends after -n events in total or after -t seconds
 *          (default: never; kill it). -s makes every event callback sleep MS
 *          milliseconds (a slow client).
 *   info   prints the connection of every PV (native type, element count,
 *          host, access).
 *   layout prints the size and value offset of every DBR type as compiled,
 *          then the sizes and offsets of the declared libca structures and the
 *          values of the declared constants.
 *   -w SEC  connection and completion timeout (default 5).
 *
 *   The driver refuses to run (status 2) unless EPICS_CA_AUTO_ADDR_LIST is
 *   NO: its searches go only to EPICS_CA_ADDR_LIST, never to broadcast
 *   addresses.
 *
 * OUTPUT (one object per line, key "event" first)
 *   conn      pv, connected, state, native_type, native_type_name,
 *             element_count, host, read, write
 *   access    pv, read, write
 *   value     op ("get" or "monitor"), pv, seq (monitor), eca, eca_msg,
 *             type, type_name, count, and as far as the type carries them:
 *             alarm_status, alarm_severity, stamp_sec, stamp_nsec (EPICS
 *             epoch), units, precision, no_str, enum_strs, upper_disp_limit,
 *             lower_disp_limit, upper_alarm_limit, upper_warning_limit,
 *             lower_warning_limit, lower_alarm_limit, upper_ctrl_limit,
 *             lower_ctrl_limit, ackt, acks, and value (always an array).
 *   subscribed pv, type, count, mask, ca_status, ca_msg
 *   put       pv, type, type_name, count, callback, ca_status, ca_msg
 *             (ca_status is the return value of the libca put call)
 *   put_done  pv, eca, eca_msg (the put callback's status)
 *   exception pv (or null), stat, msg, op, type, count, ctx
 *   error     pv, op, eca, msg (a libca call failed)
 *   timeout   pv, what ("connect", "get", "put_callback")
 *   end       reason ("events", "time"), events
 *   usage     msg (also printed to stderr)
 *   layout    type, type_name, size, value_offset, value_size
 *   abi       name, and size, offset or value: the declared libca structures
 *             and constants (printed by "layout" after the types)
 * Floating-point values are exact (%.17g); NaN and infinities are the
 * strings "NaN", "Inf" and "-Inf". In strings, bytes below 0x20 and from
 * 0x7f up are escaped as \u00XX, so every byte survives unchanged.
 *
 * EXIT STATUS
 *   0 success; 1 a CA error (a libca call or a completion reported a status
 *   other than ECA_NORMAL, or an exception other than a lost circuit,
 *   ECA_DISCONN or ECA_UNRESPTMO, arrived); 2 usage; 3 a timeout or a PV
 *   that never connected (takes precedence over 1).
 */

#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* libca C API, declared from its documented ABI.                            */

typedef struct cadrv_channel *chid;           /* opaque channel handle */
typedef struct cadrv_subscription *evid;      /* opaque subscription handle */
typedef long chtype;                          /* DBR type number */
typedef double ca_real;                       /* seconds */
typedef unsigned capri;                       /* circuit priority 0..99 */

/* Argument of a connection callback. */
struct connection_handler_args {
    chid chan;
    long op; /* CA_OP_CONN_UP or CA_OP_CONN_DOWN */
};

/* Access rights as libca passes them: two one-bit fields in an unsigned. */
struct ca_rights {
    unsigned read_access : 1;
    unsigned write_access : 1;
};

/* Argument of an access rights callback. */
struct access_rights_handler_args {
    chid chan;
    struct ca_rights ar;
};

/* Argument of get, put and subscription callbacks. dbr is NULL unless
 * status is ECA_NORMAL; the data is in host byte order. */
struct event_handler_args {
    void *usr;
    chid chan;
    long type;
    long count;
    const void *dbr;
    int status;
};

/* Argument of the exception callback. */
struct exception_handler_args {
    void *usr;
    chid chan; /* may be NULL */
    long type;
    long count;
    void *addr;
    long stat;
    long op;
    const char *ctx;
    const char *file;
    unsigned line;
};

typedef void ca_conn_fn(struct connection_handler_args);
typedef void ca_event_fn(struct event_handler_args);
typedef void ca_exception_fn(struct exception_handler_args);
typedef void ca_access_fn(struct access_rights_handler_args);

enum { CA_DISABLE_PREEMPTIVE_CALLBACK = 0 };
enum { CA_OP_GET = 0, CA_OP_PUT = 1, CA_OP_CREATE_CHANNEL = 2,
       CA_OP_ADD_EVENT = 3, CA_OP_CLEAR_EVENT = 4, CA_OP_OTHER = 5,
       CA_OP_CONN_UP = 6, CA_OP_CONN_DOWN = 7 };
enum { DBE_VALUE = 1, DBE_LOG = 2, DBE_ALARM = 4, DBE_PROPERTY = 8 };
enum { ECA_NORMAL = 1, ECA_TIMEOUT = 80, ECA_DISCONN = 192, ECA_UNRESPTMO = 480 };

int ca_context_create(int preemptive_select);
void ca_context_destroy(void);
int ca_add_exception_event(ca_exception_fn *fn, void *arg);
int ca_create_channel(const char *name, ca_conn_fn *fn, void *usr,
                      capri priority, chid *out);
int ca_clear_channel(chid chan);
int ca_replace_access_rights_event(chid chan, ca_access_fn *fn);
int ca_array_get_callback(chtype type, unsigned long count, chid chan,
                          ca_event_fn *fn, void *usr);
int ca_array_put(chtype type, unsigned long count, chid chan,
                 const void *value);
int ca_array_put_callback(chtype type, unsigned long count, chid chan,
                          const void *value, ca_event_fn *fn, void *usr);
int ca_create_subscription(chtype type, unsigned long count, chid chan,
                           long mask, ca_event_fn *fn, void *usr, evid *out);
int ca_clear_subscription(evid sub);
short ca_field_type(chid chan);
unsigned long ca_element_count(chid chan);
const char *ca_name(chid chan);
unsigned ca_read_access(chid chan);
unsigned ca_write_access(chid chan);
int ca_state(chid chan);
const char *ca_host_name(chid chan);
int ca_pend_event(ca_real seconds);
int ca_flush_io(void);
const char *ca_message(long status);

/* ------------------------------------------------------------------------ */
/* DBR layouts (host order, C alignment), per ca-protocol.md section 5.2.    */

#define STRSZ 40   /* MAX_STRING_SIZE */
#define UNITSZ 8   /* MAX_UNITS_SIZE */
#define NSTATES 16 /* MAX_ENUM_STATES */
#define STATESZ 26 /* MAX_ENUM_STRING_SIZE */

struct stamp { uint32_t sec; uint32_t nsec; };

struct dbr_sts_string { int16_t status, severity; char value[STRSZ]; };
struct dbr_sts_short { int16_t status, severity; int16_t value; };
struct dbr_sts_float { int16_t status, severity; float value; };
struct dbr_sts_enum { int16_t status, severity; uint16_t value; };
struct dbr_sts_char { int16_t status, severity; uint8_t pad; uint8_t value; };
struct dbr_sts_long { int16_t status, severity; int32_t value; };
struct dbr_sts_double { int16_t status, severity; int32_t pad; double value; };

struct dbr_time_string { int16_t status, severity; struct stamp stamp; char value[STRSZ]; };
struct dbr_time_short { int16_t status, severity; struct stamp stamp; int16_t pad; int16_t value; };
struct dbr_time_float { int16_t status, severity; struct stamp stamp; float value; };
struct dbr_time_enum { int16_t status, severity; struct stamp stamp; int16_t pad; uint16_t value; };
struct dbr_time_char { int16_t status, severity; struct stamp stamp; int16_t pad0; uint8_t pad1; uint8_t value; };
struct dbr_time_long { int16_t status, severity; struct stamp stamp; int32_t value; };
struct dbr_time_double { int16_t status, severity; struct stamp stamp; int32_t pad; double value; };

/* Graphic (GR) and control (CTRL) families. The limits of one struct are
 * contiguous and in the order of limit_names below. */
struct dbr_gr_short { int16_t status, severity; char units[UNITSZ]; int16_t lim[6]; int16_t value; };
struct dbr_gr_float { int16_t status, severity; int16_t precision; int16_t pad; char units[UNITSZ]; float lim[6]; float value; };
struct dbr_gr_enum { int16_t status, severity; int16_t no_str; char strs[NSTATES][STATESZ]; uint16_t value; };
struct dbr_gr_char { int16_t status, severity; char units[UNITSZ]; uint8_t lim[6]; uint8_t pad; uint8_t value; };
struct dbr_gr_long { int16_t status, severity; char units[UNITSZ]; int32_t lim[6]; int32_t value; };
struct dbr_gr_double { int16_t status, severity; int16_t precision; int16_t pad; char units[UNITSZ]; double lim[6]; double value; };

struct dbr_ctrl_short { int16_t status, severity; char units[UNITSZ]; int16_t lim[8]; int16_t value; };
struct dbr_ctrl_float { int16_t status, severity; int16_t precision; int16_t pad; char units[UNITSZ]; float lim[8]; float value; };
struct dbr_ctrl_char { int16_t status, severity; char units[UNITSZ]; uint8_t lim[8]; uint8_t pad; uint8_t value; };
struct dbr_ctrl_long { int16_t status, severity; char units[UNITSZ]; int32_t lim[8]; int32_t value; };
struct dbr_ctrl_double { int16_t status, severity; int16_t precision; int16_t pad; char units[UNITSZ]; double lim[8]; double value; };

struct dbr_stsack_string { uint16_t status, severity, ackt, acks; char value[STRSZ]; };

/* Compile-time check of every documented size and value offset. */
#define LAYOUT(T, size, voff) \
    _Static_assert(sizeof(struct T) == (size) && offsetof(struct T, value) == (voff), #T)
LAYOUT(dbr_sts_string, 44, 4);   LAYOUT(dbr_sts_short, 6, 4);
LAYOUT(dbr_sts_float, 8, 4);     LAYOUT(dbr_sts_enum, 6, 4);
LAYOUT(dbr_sts_char, 6, 5);      LAYOUT(dbr_sts_long, 8, 4);
LAYOUT(dbr_sts_double, 16, 8);
LAYOUT(dbr_time_string, 52, 12); LAYOUT(dbr_time_short, 16, 14);
LAYOUT(dbr_time_float, 16, 12);  LAYOUT(dbr_time_enum, 16, 14);
LAYOUT(dbr_time_char, 16, 15);   LAYOUT(dbr_time_long, 16, 12);
LAYOUT(dbr_time_double, 24, 16);
LAYOUT(dbr_gr_short, 26, 24);    LAYOUT(dbr_gr_float, 44, 40);
LAYOUT(dbr_gr_enum, 424, 422);   LAYOUT(dbr_gr_char, 20, 19);
LAYOUT(dbr_gr_long, 40, 36);     LAYOUT(dbr_gr_double, 72, 64);
LAYOUT(dbr_ctrl_short, 30, 28);  LAYOUT(dbr_ctrl_float, 52, 48);
LAYOUT(dbr_ctrl_char, 22, 21);   LAYOUT(dbr_ctrl_long, 48, 44);
LAYOUT(dbr_ctrl_double, 88, 80); LAYOUT(dbr_stsack_string, 48, 8);
_Static_assert(offsetof(struct dbr_gr_short, lim) == 12, "gr_short limits");
_Static_assert(offsetof(struct dbr_gr_float, units) == 8 && offsetof(struct dbr_gr_float, lim) == 16, "gr_float");
_Static_assert(offsetof(struct dbr_gr_enum, strs) == 6, "gr_enum strs");
_Static_assert(offsetof(struct dbr_gr_char, lim) == 12, "gr_char limits");
_Static_assert(offsetof(struct dbr_gr_long, lim) == 12, "gr_long limits");
_Static_assert(offsetof(struct dbr_gr_double, units) == 8 && offsetof(struct dbr_gr_double, lim) == 16, "gr_double");
_Static_assert(offsetof(struct dbr_time_string, stamp) == 4, "stamp offset");

/* Value element kinds. */
enum kind { K_STRING, K_SHORT, K_FLOAT, K_ENUM, K_CHAR, K_LONG, K_DOUBLE };

static const size_t kind_size[] = { STRSZ, 2, 4, 2, 1, 4, 8 };

/* Families. */
enum family { F_PLAIN, F_STS, F_TIME, F_GR, F_CTRL, F_PUTACK, F_STSACK, F_CLASS };

struct dbrtype {
    const char *name;
    enum kind kind;
    enum family family;
    size_t size;   /* size of one element's structure */
    size_t voff;   /* offset of the value */
};

#define PLAIN(n, k, ctype) { n, k, F_PLAIN, sizeof(ctype), 0 }
#define FAM(n, k, f, T) { n, k, f, sizeof(struct T), offsetof(struct T, value) }

static const struct dbrtype types[] = {
    PLAIN("DBR_STRING", K_STRING, char[STRSZ]),
    PLAIN("DBR_SHORT", K_SHORT, int16_t),
    PLAIN("DBR_FLOAT", K_FLOAT, float),
    PLAIN("DBR_ENUM", K_ENUM, uint16_t),
    PLAIN("DBR_CHAR", K_CHAR, uint8_t),
    PLAIN("DBR_LONG", K_LONG, int32_t),
    PLAIN("DBR_DOUBLE", K_DOUBLE, double),
    FAM("DBR_STS_STRING", K_STRING, F_STS, dbr_sts_string),
    FAM("DBR_STS_SHORT", K_SHORT, F_STS, dbr_sts_short),
    FAM("DBR_STS_FLOAT", K_FLOAT, F_STS, dbr_sts_float),
    FAM("DBR_STS_ENUM", K_ENUM, F_STS, dbr_sts_enum),
    FAM("DBR_STS_CHAR", K_CHAR, F_STS, dbr_sts_char),
    FAM("DBR_STS_LONG", K_LONG, F_STS, dbr_sts_long),
    FAM("DBR_STS_DOUBLE", K_DOUBLE, F_STS, dbr_sts_double),
    FAM("DBR_TIME_STRING", K_STRING, F_TIME, dbr_time_string),
    FAM("DBR_TIME_SHORT", K_SHORT, F_TIME, dbr_time_short),
    FAM("DBR_TIME_FLOAT", K_FLOAT, F_TIME, dbr_time_float),
    FAM("DBR_TIME_ENUM", K_ENUM, F_TIME, dbr_time_enum),
    FAM("DBR_TIME_CHAR", K_CHAR, F_TIME, dbr_time_char),
    FAM("DBR_TIME_LONG", K_LONG, F_TIME, dbr_time_long),
    FAM("DBR_TIME_DOUBLE", K_DOUBLE, F_TIME, dbr_time_double),
    FAM("DBR_GR_STRING", K_STRING, F_GR, dbr_sts_string),
    FAM("DBR_GR_SHORT", K_SHORT, F_GR, dbr_gr_short),
    FAM("DBR_GR_FLOAT", K_FLOAT, F_GR, dbr_gr_float),
    FAM("DBR_GR_ENUM", K_ENUM, F_GR, dbr_gr_enum),
    FAM("DBR_GR_CHAR", K_CHAR, F_GR, dbr_gr_char),
    FAM("DBR_GR_LONG", K_LONG, F_GR, dbr_gr_long),
    FAM("DBR_GR_DOUBLE", K_DOUBLE, F_GR, dbr_gr_double),
    FAM("DBR_CTRL_STRING", K_STRING, F_CTRL, dbr_sts_string),
    FAM("DBR_CTRL_SHORT", K_SHORT, F_CTRL, dbr_ctrl_short),
    FAM("DBR_CTRL_FLOAT", K_FLOAT, F_CTRL, dbr_ctrl_float),
    FAM("DBR_CTRL_ENUM", K_ENUM, F_CTRL, dbr_gr_enum),
    FAM("DBR_CTRL_CHAR", K_CHAR, F_CTRL, dbr_ctrl_char),
    FAM("DBR_CTRL_LONG", K_LONG, F_CTRL, dbr_ctrl_long),
    FAM("DBR_CTRL_DOUBLE", K_DOUBLE, F_CTRL, dbr_ctrl_double),
    PLAIN("DBR_PUT_ACKT", K_ENUM, uint16_t),
    PLAIN("DBR_PUT_ACKS", K_ENUM, uint16_t),
    FAM("DBR_STSACK_STRING", K_STRING, F_STSACK, dbr_stsack_string),
    PLAIN("DBR_CLASS_NAME", K_STRING, char[STRSZ]),
};

#define NTYPES ((int)(sizeof(types) / sizeof(types[0])))
_Static_assert(sizeof(types) / sizeof(types[0]) == 39, "39 DBR types");

static enum family family_of(int t)
{
    if (t == 35 || t == 36)
        return F_PUTACK;
    if (t == 38)
        return F_CLASS;
    return types[t].family;
}

/* Base plain type (0..6) of a family type (7..34). */
static int base_of(int t) { return t <= 6 ? t : (t - 7) % 7; }

static const char *limit_names[8] = {
    "upper_disp_limit", "lower_disp_limit", "upper_alarm_limit",
    "upper_warning_limit", "lower_warning_limit", "lower_alarm_limit",
    "upper_ctrl_limit", "lower_ctrl_limit",
};

/* ------------------------------------------------------------------------ */
/* JSON output. Every line starts with out_begin and ends with out_end.      */

static void out_escaped(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            putchar('\\');
            putchar(c);
        } else if (c < 0x20 || c >= 0x7f) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void out_begin(const char *event)
{
    printf("{\"event\":\"%s\"", event);
}

static void out_key(const char *key) { printf(",\"%s\":", key); }

static void out_str(const char *key, const char *s)
{
    out_key(key);
    if (s == NULL)
        fputs("null", stdout);
    else
        out_escaped(s, SIZE_MAX);
}

static void out_strn(const char *key, const char *s, size_t max)
{
    out_key(key);
    out_escaped(s, max);
}

static void out_int(const char *key, long long v)
{
    out_key(key);
    printf("%lld", v);
}

static void out_bool(const char *key, int v)
{
    out_key(key);
    fputs(v ? "true" : "false", stdout);
}

static void put_double(double v)
{
    if (isnan(v))
        fputs("\"NaN\"", stdout);
    else if (isinf(v))
        fputs(v > 0 ? "\"Inf\"" : "\"-Inf\"", stdout);
    else
        printf("%.17g", v);
}

static void out_end(void)
{
    fputs("}\n", stdout);
    fflush(stdout);
}

/* Prints element i of an array of the given kind (p may be unaligned). */
static void put_element(enum kind k, const unsigned char *p)
{
    switch (k) {
    case K_STRING: out_escaped((const char *)p, STRSZ); break;
    case K_SHORT: { int16_t v; memcpy(&v, p, 2); printf("%d", v); break; }
    case K_ENUM: { uint16_t v; memcpy(&v, p, 2); printf("%u", v); break; }
    case K_CHAR: printf("%u", *p); break;
    case K_LONG: { int32_t v; memcpy(&v, p, 4); printf("%d", (int)v); break; }
    case K_FLOAT: { float v; memcpy(&v, p, 4); put_double(v); break; }
    case K_DOUBLE: { double v; memcpy(&v, p, 8); put_double(v); break; }
    }
}

static void out_array(const char *key, enum kind k, const void *first, long n)
{
    const unsigned char *p = first;
    out_key(key);
    putchar('[');
    for (long i = 0; i < n; i++) {
        if (i)
            putchar(',');
        put_element(k, p + (size_t)i * kind_size[k]);
    }
    putchar(']');
}

static void out_limits(enum kind k, const void *first, int n)
{
    const unsigned char *p = first;
    for (int i = 0; i < n; i++) {
        out_key(limit_names[i]);
        put_element(k, p + (size_t)i * kind_size[k]);
    }
}

static void out_status(int st)
{
    out_int("ca_status", st);
    out_str("ca_msg", ca_message(st));
}

/* ------------------------------------------------------------------------ */
/* State.                                                                    */

struct pv {
    const char *name;
    chid chan;
    int connected;
    int ever_connected;
    int pending;  /* an operation is outstanding */
    int done;     /* the operation completed */
    evid sub;
    int subscribed;  /* sub is valid */
    int sub_tried;   /* a subscription was attempted */
};

static struct pv *pvs;
static int npvs;
static int exit_ca_error;   /* a CA error was seen */
static long events_seen;    /* monitor events delivered */
static long slow_ms;        /* monitor callback delay */
static int print_access;    /* print access rights changes */

/* Options shared by the monitor's connection callback. */
static int mon_type = -1;
static long mon_count;
static long mon_mask = DBE_VALUE | DBE_ALARM;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Processes libca events until done() is true or the deadline passes. */
static void pend_until(double deadline, int (*done)(void))
{
    while ((done == NULL || !done()) && now() < deadline)
        ca_pend_event(0.01);
}

static int all_connected(void)
{
    for (int i = 0; i < npvs; i++)
        if (!pvs[i].connected)
            return 0;
    return 1;
}

static int all_done(void)
{
    for (int i = 0; i < npvs; i++)
        if (pvs[i].pending && !pvs[i].done)
            return 0;
    return 1;
}

static const char *type_name(long t)
{
    if (t >= 0 && t < NTYPES)
        return types[t].name;
    return "TYPENOTCONN";
}

static void print_conn(struct pv *pv, int up)
{
    short nt = ca_field_type(pv->chan);
    out_begin("conn");
    out_str("pv", pv->name);
    out_bool("connected", up);
    out_int("state", ca_state(pv->chan));
    out_int("native_type", nt);
    out_str("native_type_name", type_name(nt));
    out_int("element_count", (long long)ca_element_count(pv->chan));
    out_str("host", ca_host_name(pv->chan));
    out_bool("read", ca_read_access(pv->chan) != 0);
    out_bool("write", ca_write_access(pv->chan) != 0);
    out_end();
}

static void access_cb(struct access_rights_handler_args a)
{
    const char *name = ca_name(a.chan);
    out_begin("access");
    out_str("pv", name);
    out_bool("read", a.ar.read_access);
    out_bool("write", a.ar.write_access);
    out_end();
}

static void exception_cb(struct exception_handler_args a)
{
    out_begin("exception");
    out_str("pv", a.chan ? ca_name(a.chan) : NULL);
    out_int("stat", a.stat);
    out_str("msg", ca_message(a.stat));
    out_int("op", a.op);
    out_int("type", a.type);
    out_int("count", a.count);
    out_str("ctx", a.ctx);
    out_end();
    /* A lost circuit is reported by the connection callbacks; it is not an
     * error of the operations the driver was asked for. */
    if (a.stat != ECA_DISCONN && a.stat != ECA_UNRESPTMO)
        exit_ca_error = 1;
}

static void subscribe(struct pv *pv);

static void conn_cb(struct connection_handler_args a)
{
    struct pv *pv = NULL;
    for (int i = 0; i < npvs; i++)
        if (pvs[i].chan == a.chan)
            pv = &pvs[i];
    if (pv == NULL)
        return;
    pv->connected = (a.op == CA_OP_CONN_UP);
    if (pv->connected)
        pv->ever_connected = 1;
    print_conn(pv, pv->connected);
    if (pv->connected && mon_type != -2 && !pv->sub_tried)
        subscribe(pv);
}

/* Prints a value line for a get or monitor callback. */
static void print_value(const char *op, struct event_handler_args *a, long seq)
{
    struct pv *pv = a->usr;
    int t = (int)a->type;
    out_begin("value");
    out_str("op", op);
    out_str("pv", pv->name);
    if (seq > 0)
        out_int("seq", seq);
    out_int("eca", a->status);
    out_str("eca_msg", ca_message(a->status));
    out_int("type", a->type);
    out_str("type_name", type_name(a->type));
    out_int("count", a->count);
    if (a->dbr == NULL || t < 0 || t >= NTYPES) {
        out_end();
        return;
    }
    const unsigned char *d = a->dbr;
    const struct dbrtype *ty = &types[t];
    enum family f = family_of(t);
    int b = base_of(t);
    if (f == F_STS || f == F_TIME || f == F_GR || f == F_CTRL) {
        const struct dbr_sts_short *s = a->dbr; /* common status prefix */
        out_int("alarm_status", s->status);
        out_int("alarm_severity", s->severity);
    }
    if (f == F_TIME) {
        const struct dbr_time_short *tm = a->dbr;
        out_int("stamp_sec", tm->stamp.sec);
        out_int("stamp_nsec", tm->stamp.nsec);
    }
    if (f == F_STSACK) {
        const struct dbr_stsack_string *s = a->dbr;
        out_int("alarm_status", s->status);
        out_int("alarm_severity", s->severity);
        out_int("ackt", s->ackt);
        out_int("acks", s->acks);
    }
    if (f == F_GR || f == F_CTRL) {
        int nlim = f == F_CTRL ? 8 : 6;
        switch (b) {
        case 0: /* GR/CTRL_STRING carry status only */
            break;
        case 1: {
            const struct dbr_ctrl_short *g = a->dbr;
            out_strn("units", g->units, UNITSZ);
            out_limits(K_SHORT, g->lim, nlim);
            break;
        }
        case 2: {
            const struct dbr_ctrl_float *g = a->dbr;
            out_int("precision", g->precision);
            out_strn("units", g->units, UNITSZ);
            out_limits(K_FLOAT, g->lim, nlim);
            break;
        }
        case 3: {
            const struct dbr_gr_enum *g = a->dbr;
            int n = g->no_str;
            out_int("no_str", n);
            if (n < 0)
                n = 0;
            if (n > NSTATES)
                n = NSTATES;
            out_key("enum_strs");
            putchar('[');
            for (int i = 0; i < n; i++) {
                if (i)
                    putchar(',');
                out_escaped(g->strs[i], STATESZ);
            }
            putchar(']');
            break;
        }
        case 4: {
            const struct dbr_ctrl_char *g = a->dbr;
            out_strn("units", g->units, UNITSZ);
            out_limits(K_CHAR, g->lim, nlim);
            break;
        }
        case 5: {
            const struct dbr_ctrl_long *g = a->dbr;
            out_strn("units", g->units, UNITSZ);
            out_limits(K_LONG, g->lim, nlim);
            break;
        }
        case 6: {
            const struct dbr_ctrl_double *g = a->dbr;
            out_int("precision", g->precision);
            out_strn("units", g->units, UNITSZ);
            out_limits(K_DOUBLE, g->lim, nlim);
            break;
        }
        }
    }
    out_array("value", ty->kind, d + ty->voff, a->count);
    out_end();
}

/* ------------------------------------------------------------------------ */
/* Argument parsing helpers.                                                 */

static const char *progname = "cadriver";

static int usage(const char *msg)
{
    fprintf(stderr, "%s: %s\n", progname, msg);
    fprintf(stderr,
            "usage: cadriver get [-d TYPE] [-c COUNT] [-w SEC] PV...\n"
            "       cadriver put [-d TYPE] [-c] [-S] [-w SEC] [-l SEC] PV [VALUE...]\n"
            "       cadriver monitor [-d TYPE] [-c COUNT] [-m MASK] [-n EVENTS] [-t SEC] [-s MS] PV...\n"
            "       cadriver info [-w SEC] PV...\n"
            "       cadriver layout\n");
    out_begin("usage");
    out_str("msg", msg);
    out_end();
    return 2;
}

/* Parses a DBR type number or name; returns -1 when invalid. */
static int parse_type(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s != '\0' && *end == '\0' && errno == 0)
        return v >= 0 && v < NTYPES ? (int)v : -1;
    for (int t = 0; t < NTYPES; t++) {
        if (strcasecmp(s, types[t].name) == 0 || strcasecmp(s, types[t].name + 4) == 0)
            return t;
    }
    return -1;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (*s == '\0' || *end != '\0' || errno != 0)
        return -1;
    *out = v;
    return 0;
}

/* Parses the monitor mask: a number, or letters from "vlap". */
static int parse_mask(const char *s, long *out)
{
    if (parse_long(s, out) == 0)
        return 0;
    long m = 0;
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case 'v': m |= DBE_VALUE; break;
        case 'l': m |= DBE_LOG; break;
        case 'a': m |= DBE_ALARM; break;
        case 'p': m |= DBE_PROPERTY; break;
        default: return -1;
        }
    }
    *out = m;
    return 0;
}

/* Creates the channels named by argv[0..n-1]. */
static int create_channels(int n, char **names)
{
    npvs = n;
    pvs = calloc((size_t)n, sizeof(*pvs));
    if (pvs == NULL) {
        fprintf(stderr, "%s: out of memory\n", progname);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        pvs[i].name = names[i];
        int st = ca_create_channel(names[i], conn_cb, &pvs[i], 0, &pvs[i].chan);
        if (st != ECA_NORMAL) {
            out_begin("error");
            out_str("pv", names[i]);
            out_str("op", "create_channel");
            out_int("eca", st);
            out_str("msg", ca_message(st));
            out_end();
            return 1;
        }
        if (print_access)
            ca_replace_access_rights_event(pvs[i].chan, access_cb);
    }
    ca_flush_io();
    return 0;
}

static void report_error(struct pv *pv, const char *op, int st)
{
    out_begin("error");
    out_str("pv", pv->name);
    out_str("op", op);
    out_int("eca", st);
    out_str("msg", ca_message(st));
    out_end();
    exit_ca_error = 1;
}

static void report_timeout(struct pv *pv, const char *what)
{
    out_begin("timeout");
    out_str("pv", pv->name);
    out_str("what", what);
    out_end();
}

/* Waits for the connections; returns 3 when some PV did not connect. */
static int wait_connected(double timeout)
{
    pend_until(now() + timeout, all_connected);
    int rc = 0;
    for (int i = 0; i < npvs; i++) {
        if (!pvs[i].connected) {
            report_timeout(&pvs[i], "connect");
            rc = 3;
        }
    }
    return rc;
}

static int finish(int rc)
{
    for (int i = 0; i < npvs; i++) {
        if (pvs[i].subscribed)
            ca_clear_subscription(pvs[i].sub);
        ca_clear_channel(pvs[i].chan);
    }
    ca_flush_io();
    ca_context_destroy();
    free(pvs);
    if (rc == 0 && exit_ca_error)
        rc = 1;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* get                                                                       */

static void get_cb(struct event_handler_args a)
{
    struct pv *pv = a.usr;
    print_value("get", &a, 0);
    if (a.status != ECA_NORMAL)
        exit_ca_error = 1;
    pv->done = 1;
}

static int cmd_get(int argc, char **argv)
{
    int type = -1;
    long count = -1;
    double w = 5.0;
    int c;
    while ((c = getopt(argc, argv, "+d:c:w:")) != -1) {
        switch (c) {
        case 'd':
            if ((type = parse_type(optarg)) < 0)
                return usage("bad -d type");
            break;
        case 'c':
            if (parse_long(optarg, &count) != 0 || count < 0)
                return usage("bad -c count");
            break;
        case 'w':
            if (parse_double(optarg, &w) != 0 || !(w >= 0))
                return usage("bad -w timeout");
            break;
        default:
            return usage("unknown option");
        }
    }
    if (optind >= argc)
        return usage("get needs at least one PV");
    if (create_channels(argc - optind, argv + optind) != 0)
        return finish(1);
    int rc = wait_connected(w);
    for (int i = 0; i < npvs; i++) {
        struct pv *pv = &pvs[i];
        if (!pv->connected)
            continue;
        int t = type >= 0 ? type : ca_field_type(pv->chan);
        unsigned long n = count >= 0 ? (unsigned long)count : ca_element_count(pv->chan);
        int st = ca_array_get_callback(t, n, pv->chan, get_cb, pv);
        if (st != ECA_NORMAL) {
            report_error(pv, "get", st);
            continue;
        }
        pv->pending = 1;
    }
    ca_flush_io();
    pend_until(now() + w, all_done);
    for (int i = 0; i < npvs; i++) {
        if (pvs[i].pending && !pvs[i].done) {
            report_timeout(&pvs[i], "get");
            rc = 3;
        }
    }
    return finish(rc);
}

/* ------------------------------------------------------------------------ */
/* put                                                                       */

/* Stores text s as one element of kind k at p; returns 0 or -1. */
static int encode_element(enum kind k, const char *s, unsigned char *p)
{
    if (k == K_STRING) {
        size_t n = strlen(s);
        if (n > STRSZ)
            return -1;
        memcpy(p, s, n); /* the buffer is zeroed: NUL-terminated when n < 40 */
        return 0;
    }
    double d = 0;
    long l = 0;
    int isint = parse_long(s, &l) == 0;
    if (!isint && parse_double(s, &d) != 0)
        return -1;
    if (!isint && (k == K_SHORT || k == K_ENUM || k == K_CHAR || k == K_LONG)) {
        if (!(d >= (double)LONG_MIN && d <= (double)LONG_MAX))
            return -1;
        l = (long)d; /* C conversion: truncates toward zero */
    }
    switch (k) {
    case K_SHORT:
    case K_ENUM: {
        if (l < INT16_MIN || l > UINT16_MAX)
            return -1;
        uint16_t v = (uint16_t)l;
        memcpy(p, &v, 2);
        return 0;
    }
    case K_CHAR:
        if (l < INT8_MIN || l > UINT8_MAX)
            return -1;
        *p = (uint8_t)l;
        return 0;
    case K_LONG: {
        if (l < INT32_MIN || l > (long)UINT32_MAX)
            return -1;
        uint32_t v = (uint32_t)l;
        memcpy(p, &v, 4);
        return 0;
    }
    case K_FLOAT: {
        float v = isint ? (float)l : (float)d;
        memcpy(p, &v, 4);
        return 0;
    }
    case K_DOUBLE: {
        double v = isint ? (double)l : d;
        memcpy(p, &v, 8);
        return 0;
    }
    default:
        return -1;
    }
}

static void put_cb(struct event_handler_args a)
{
    struct pv *pv = a.usr;
    out_begin("put_done");
    out_str("pv", pv->name);
    out_int("eca", a.status);
    out_str("eca_msg", ca_message(a.status));
    out_end();
    if (a.status != ECA_NORMAL)
        exit_ca_error = 1;
    pv->done = 1;
}

static int cmd_put(int argc, char **argv)
{
    int type = -1, callback = 0, text = 0;
    double w = 5.0, linger = 0.2;
    int c;
    while ((c = getopt(argc, argv, "+d:cSw:l:")) != -1) {
        switch (c) {
        case 'd':
            if ((type = parse_type(optarg)) < 0)
                return usage("bad -d type");
            break;
        case 'c': callback = 1; break;
        case 'S': text = 1; break;
        case 'w':
            if (parse_double(optarg, &w) != 0 || !(w >= 0))
                return usage("bad -w timeout");
            break;
        case 'l':
            if (parse_double(optarg, &linger) != 0 || !(linger >= 0))
                return usage("bad -l linger");
            break;
        default:
            return usage("unknown option");
        }
    }
    if (optind >= argc)
        return usage("put needs a PV");
    char *name = argv[optind++];
    int nvals = argc - optind;
    char **vals = argv + optind;
    if (nvals == 0 && type < 0)
        return usage("put needs a VALUE (or -d TYPE for a put of zero elements)");
    if (text && nvals != 1)
        return usage("-S needs exactly one VALUE");
    if (text && type < 0)
        type = 4;
    if (text && types[type].kind != K_CHAR)
        return usage("-S needs a DBR_CHAR type");
    if (type < 0)
        type = nvals == 1 ? 0 : 6;

    const struct dbrtype *ty = &types[type];
    size_t vsize = kind_size[ty->kind];
    unsigned long count = text ? strlen(vals[0]) + 1 : (unsigned long)nvals;
    size_t meta = ty->size - vsize; /* metadata before the first element */
    size_t bytes = meta + count * vsize;
    if (bytes < ty->size)
        bytes = ty->size;
    unsigned char *buf = calloc(1, bytes);
    if (buf == NULL) {
        fprintf(stderr, "%s: out of memory\n", progname);
        return 1;
    }
    if (text) {
        memcpy(buf + ty->voff, vals[0], count - 1);
    } else {
        for (int i = 0; i < nvals; i++) {
            if (encode_element(ty->kind, vals[i], buf + ty->voff + (size_t)i * vsize) != 0) {
                free(buf);
                return usage("VALUE does not convert to the requested type");
            }
        }
    }

    if (create_channels(1, &name) != 0) {
        free(buf);
        return finish(1);
    }
    int rc = wait_connected(w);
    if (rc == 0) {
        struct pv *pv = &pvs[0];
        int st = callback
                     ? ca_array_put_callback(type, count, pv->chan, buf, put_cb, pv)
                     : ca_array_put(type, count, pv->chan, buf);
        out_begin("put");
        out_str("pv", pv->name);
        out_int("type", type);
        out_str("type_name", ty->name);
        out_int("count", (long long)count);
        out_bool("callback", callback);
        out_status(st);
        out_end();
        if (st != ECA_NORMAL) {
            exit_ca_error = 1;
        } else if (callback) {
            pv->pending = 1;
            ca_flush_io();
            pend_until(now() + w, all_done);
            if (!pv->done) {
                report_timeout(pv, "put_callback");
                rc = 3;
            }
        } else {
            ca_flush_io();
            pend_until(now() + linger, NULL);
        }
    }
    free(buf);
    return finish(rc);
}

/* ------------------------------------------------------------------------ */
/* monitor                                                                   */

static long max_events = -1;
static double mon_deadline = INFINITY;

static int enough_events(void) { return max_events >= 0 && events_seen >= max_events; }

/* libca may deliver a whole backlog of events within one ca_pend_event
 * call, so the callback itself stops taking events once the monitor should
 * end; the rest of the backlog is then dropped without sleeping. */
static void monitor_cb(struct event_handler_args a)
{
    if (enough_events() || now() >= mon_deadline)
        return;
    events_seen++;
    print_value("monitor", &a, events_seen);
    if (slow_ms > 0) {
        struct timespec ts = { slow_ms / 1000, (slow_ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
}

static void subscribe(struct pv *pv)
{
    int t = mon_type >= 0 ? mon_type : ca_field_type(pv->chan) + 14;
    int st = ca_create_subscription(t, (unsigned long)mon_count, pv->chan, mon_mask,
                                    monitor_cb, pv, &pv->sub);
    out_begin("subscribed");
    out_str("pv", pv->name);
    out_int("type", t);
    out_str("type_name", type_name(t));
    out_int("count", mon_count);
    out_int("mask", mon_mask);
    out_status(st);
    out_end();
    if (st == ECA_NORMAL)
        pv->subscribed = 1;
    else
        exit_ca_error = 1;
    /* Never retried: the subscription survives reconnections inside libca. */
    pv->sub_tried = 1;
}

static int cmd_monitor(int argc, char **argv)
{
    double t = -1;
    int c;
    mon_type = -1;
    while ((c = getopt(argc, argv, "+d:c:m:n:t:s:")) != -1) {
        switch (c) {
        case 'd':
            if ((mon_type = parse_type(optarg)) < 0)
                return usage("bad -d type");
            break;
        case 'c':
            if (parse_long(optarg, &mon_count) != 0 || mon_count < 0)
                return usage("bad -c count");
            break;
        case 'm':
            if (parse_mask(optarg, &mon_mask) != 0)
                return usage("bad -m mask");
            break;
        case 'n':
            if (parse_long(optarg, &max_events) != 0 || max_events < 0)
                return usage("bad -n events");
            break;
        case 't':
            if (parse_double(optarg, &t) != 0 || !(t >= 0))
                return usage("bad -t seconds");
            break;
        case 's':
            if (parse_long(optarg, &slow_ms) != 0 || slow_ms < 0)
                return usage("bad -s milliseconds");
            break;
        default:
            return usage("unknown option");
        }
    }
    if (optind >= argc)
        return usage("monitor needs at least one PV");
    print_access = 1;
    if (create_channels(argc - optind, argv + optind) != 0)
        return finish(1);
    mon_deadline = t >= 0 ? now() + t : INFINITY;
    pend_until(mon_deadline, enough_events);
    out_begin("end");
    out_str("reason", enough_events() ? "events" : "time");
    out_int("events", events_seen);
    out_end();
    int rc = 0;
    for (int i = 0; i < npvs; i++) {
        if (!pvs[i].ever_connected) {
            report_timeout(&pvs[i], "connect");
            rc = 3;
        }
    }
    return finish(rc);
}

/* ------------------------------------------------------------------------ */
/* info and layout                                                           */

static int cmd_info(int argc, char **argv)
{
    double w = 5.0;
    int c;
    while ((c = getopt(argc, argv, "+w:")) != -1) {
        switch (c) {
        case 'w':
            if (parse_double(optarg, &w) != 0 || !(w >= 0))
                return usage("bad -w timeout");
            break;
        default:
            return usage("unknown option");
        }
    }
    if (optind >= argc)
        return usage("info needs at least one PV");
    if (create_channels(argc - optind, argv + optind) != 0)
        return finish(1);
    return finish(wait_connected(w));
}

/* ABI lines name libca's own member names, so that a program compiled
 * against the EPICS headers can print the same lines for comparison. */
#define ABI_SIZE(T, label) abi_line(label, "size", sizeof(struct T))
#define ABI_OFF(T, m, label) abi_line(label, "offset", offsetof(struct T, m))

static void abi_line(const char *name, const char *what, long long v)
{
    out_begin("abi");
    out_str("name", name);
    out_int(what, v);
    out_end();
}

static int cmd_layout(void)
{
    for (int t = 0; t < NTYPES; t++) {
        out_begin("layout");
        out_int("type", t);
        out_str("type_name", types[t].name);
        out_int("size", (long long)types[t].size);
        out_int("value_offset", (long long)types[t].voff);
        out_int("value_size", (long long)kind_size[types[t].kind]);
        out_end();
    }
    ABI_SIZE(connection_handler_args, "connection_handler_args");
    ABI_OFF(connection_handler_args, chan, "connection_handler_args.chid");
    ABI_OFF(connection_handler_args, op, "connection_handler_args.op");
    ABI_SIZE(access_rights_handler_args, "access_rights_handler_args");
    ABI_OFF(access_rights_handler_args, ar, "access_rights_handler_args.ar");
    ABI_SIZE(event_handler_args, "event_handler_args");
    ABI_OFF(event_handler_args, usr, "event_handler_args.usr");
    ABI_OFF(event_handler_args, chan, "event_handler_args.chid");
    ABI_OFF(event_handler_args, type, "event_handler_args.type");
    ABI_OFF(event_handler_args, count, "event_handler_args.count");
    ABI_OFF(event_handler_args, dbr, "event_handler_args.dbr");
    ABI_OFF(event_handler_args, status, "event_handler_args.status");
    ABI_SIZE(exception_handler_args, "exception_handler_args");
    ABI_OFF(exception_handler_args, chan, "exception_handler_args.chid");
    ABI_OFF(exception_handler_args, type, "exception_handler_args.type");
    ABI_OFF(exception_handler_args, count, "exception_handler_args.count");
    ABI_OFF(exception_handler_args, addr, "exception_handler_args.addr");
    ABI_OFF(exception_handler_args, stat, "exception_handler_args.stat");
    ABI_OFF(exception_handler_args, op, "exception_handler_args.op");
    ABI_OFF(exception_handler_args, ctx, "exception_handler_args.ctx");
    ABI_OFF(exception_handler_args, file, "exception_handler_args.pFile");
    ABI_OFF(exception_handler_args, line, "exception_handler_args.lineNo");
    abi_line("CA_OP_GET", "value", CA_OP_GET);
    abi_line("CA_OP_PUT", "value", CA_OP_PUT);
    abi_line("CA_OP_CONN_UP", "value", CA_OP_CONN_UP);
    abi_line("CA_OP_CONN_DOWN", "value", CA_OP_CONN_DOWN);
    abi_line("DBE_VALUE", "value", DBE_VALUE);
    abi_line("DBE_LOG", "value", DBE_LOG);
    abi_line("DBE_ALARM", "value", DBE_ALARM);
    abi_line("DBE_PROPERTY", "value", DBE_PROPERTY);
    abi_line("ECA_NORMAL", "value", ECA_NORMAL);
    abi_line("ECA_TIMEOUT", "value", ECA_TIMEOUT);
    abi_line("ca_disable_preemptive_callback", "value", CA_DISABLE_PREEMPTIVE_CALLBACK);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage("missing subcommand");
    const char *cmd = argv[1];
    if (strcmp(cmd, "layout") == 0)
        return cmd_layout();
    int (*run)(int, char **) = NULL;
    if (strcmp(cmd, "get") == 0)
        run = cmd_get;
    else if (strcmp(cmd, "put") == 0)
        run = cmd_put;
    else if (strcmp(cmd, "monitor") == 0)
        run = cmd_monitor;
    else if (strcmp(cmd, "info") == 0)
        run = cmd_info;
    else
        return usage("unknown subcommand");
    if (strcmp(cmd, "monitor") != 0)
        mon_type = -2; /* no subscriptions outside the monitor */

    /* A test driver must never broadcast: insist on an explicit list. */
    const char *auto_list = getenv("EPICS_CA_AUTO_ADDR_LIST");
    if (auto_list == NULL || (auto_list[0] != 'n' && auto_list[0] != 'N'))
        return usage("EPICS_CA_AUTO_ADDR_LIST must be NO (the driver never broadcasts)");

    int st = ca_context_create(CA_DISABLE_PREEMPTIVE_CALLBACK);
    if (st != ECA_NORMAL) {
        out_begin("error");
        out_str("pv", NULL);
        out_str("op", "context_create");
        out_int("eca", st);
        out_str("msg", ca_message(st));
        out_end();
        return 1;
    }
    ca_add_exception_event(exception_cb, NULL);
    /* getopt sees the subcommand's arguments only. */
    optind = 1;
    return run(argc - 1, argv + 1);
}
