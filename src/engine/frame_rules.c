/* frame_rules.c — per return address step rules from .eh_frame, and a walk with them (see
 * frame_rules.h). */
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>

#include "frame_rules.h"
#include "guard.h"

/* ---- reading .eh_frame ------------------------------------------------------------------------ */

#define DW_EH_PE_omit 0xff
#define DW_EH_PE_absptr 0x00
#define DW_EH_PE_uleb128 0x01
#define DW_EH_PE_udata2 0x02
#define DW_EH_PE_udata4 0x03
#define DW_EH_PE_udata8 0x04
#define DW_EH_PE_sleb128 0x09
#define DW_EH_PE_sdata2 0x0a
#define DW_EH_PE_sdata4 0x0b
#define DW_EH_PE_sdata8 0x0c
#define DW_EH_PE_pcrel 0x10
#define DW_EH_PE_datarel 0x30
#define DW_EH_PE_indirect 0x80

#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* A bounded reader: every read past end makes ok false and returns 0. */
typedef struct reader {
  const uint8_t *p, *end;
  bool ok;
} reader;

static uint8_t read_u8(reader *r) {
  if (r->p + 1 > r->end) {
    r->ok = false;
    return 0;
  }
  return *r->p++;
}

static uint64_t read_fixed(reader *r, size_t n) {
  uint64_t v = 0;
  if (r->p + n > r->end) {
    r->ok = false;
    return 0;
  }
  memcpy(&v, r->p, n); /* little-endian host: x86-64 only uses these rules */
  r->p += n;
  return v;
}

static uint64_t read_uleb(reader *r) {
  uint64_t v = 0;
  unsigned shift = 0;
  uint8_t b;
  do {
    b = read_u8(r);
    if (shift < 64)
      v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
  } while ((b & 0x80) && r->ok);
  return v;
}

static int64_t read_sleb(reader *r) {
  int64_t v = 0;
  unsigned shift = 0;
  uint8_t b;
  do {
    b = read_u8(r);
    if (shift < 64)
      v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
    shift += 7;
  } while ((b & 0x80) && r->ok);
  if (shift < 64 && (b & 0x40))
    v |= -((int64_t)1 << shift);
  return v;
}

/* Reads a pointer in encoding enc; data is the base of DW_EH_PE_datarel. */
static uintptr_t read_encoded(reader *r, uint8_t enc, uintptr_t data) {
  if (enc == DW_EH_PE_omit)
    return 0;
  uintptr_t at = (uintptr_t)r->p, v;
  switch (enc & 0x0f) {
  case DW_EH_PE_absptr: v = (uintptr_t)read_fixed(r, 8); break;
  case DW_EH_PE_uleb128: v = (uintptr_t)read_uleb(r); break;
  case DW_EH_PE_udata2: v = (uintptr_t)read_fixed(r, 2); break;
  case DW_EH_PE_udata4: v = (uintptr_t)read_fixed(r, 4); break;
  case DW_EH_PE_udata8: v = (uintptr_t)read_fixed(r, 8); break;
  case DW_EH_PE_sleb128: v = (uintptr_t)read_sleb(r); break;
  case DW_EH_PE_sdata2: v = (uintptr_t)(intptr_t)(int16_t)read_fixed(r, 2); break;
  case DW_EH_PE_sdata4: v = (uintptr_t)(intptr_t)(int32_t)read_fixed(r, 4); break;
  case DW_EH_PE_sdata8: v = (uintptr_t)read_fixed(r, 8); break;
  default: r->ok = false; return 0;
  }
  switch (enc & 0x70) {
  case 0: break;
  case DW_EH_PE_pcrel: v += at; break;
  case DW_EH_PE_datarel: v += data; break;
  default: r->ok = false; return 0;
  }
  if (enc & DW_EH_PE_indirect) {
    r->ok = false; /* not met in .eh_frame_hdr or FDE ranges */
    return 0;
  }
  return v;
}

/* The module that holds an address: its .eh_frame_hdr. */
typedef struct module_query {
  uintptr_t ip;
  const uint8_t *eh_frame_hdr;
  bool found;
} module_query;

static int find_module(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  module_query *q = data;
  const uint8_t *hdr = NULL;
  bool inside = false;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && q->ip >= start && q->ip < start + ph->p_memsz)
      inside = true;
    else if (ph->p_type == PT_GNU_EH_FRAME)
      hdr = (const uint8_t *)start;
  }
  if (!inside)
    return 0;
  q->found = true;
  q->eh_frame_hdr = hdr;
  return 1;
}

/* The row of a CFA program that the walk needs. */
typedef struct cfa_row {
  int cfa_reg;
  int64_t cfa_offset;
  int rbp_how; /* 0 unchanged, 1 saved at CFA + rbp_offset, -1 unsupported */
  int64_t rbp_offset;
  int ra_how; /* 1 saved at CFA + ra_offset, 2 undefined, -1 unsupported */
  int64_t ra_offset;
  bool cfa_unsupported;
} cfa_row;

#define STATE_STACK 8

/* Runs the instructions in r up to the row that covers pc (loc: the first address they
 * describe). init: the CIE's row, for DW_CFA_restore. Returns false on anything unsupported. */
static bool run_cfa(reader *r, uintptr_t loc, uintptr_t pc, uint64_t code_align,
                    int64_t data_align, cfa_row *row, const cfa_row *init) {
  cfa_row stack[STATE_STACK];
  int depth = 0;
  while (r->p < r->end && r->ok) {
    uint8_t op = read_u8(r);
    uint64_t reg = 0;
    int64_t off = 0;
    bool set_offset = false, set_same = false, set_unsupported = false, set_undefined = false;
    switch (op >> 6) {
    case 1: /* DW_CFA_advance_loc */
      loc += (op & 0x3f) * code_align;
      if (loc > pc)
        return true;
      continue;
    case 2: /* DW_CFA_offset */
      reg = op & 0x3f;
      off = (int64_t)read_uleb(r) * data_align;
      set_offset = true;
      break;
    case 3: /* DW_CFA_restore */
      reg = op & 0x3f;
      if (reg == REG_RBP) {
        row->rbp_how = init->rbp_how;
        row->rbp_offset = init->rbp_offset;
      } else if (reg == REG_RA) {
        row->ra_how = init->ra_how;
        row->ra_offset = init->ra_offset;
      }
      continue;
    default:
      switch (op) {
      case 0x00: continue;                 /* DW_CFA_nop */
      case 0x01:                           /* DW_CFA_set_loc */
        loc = (uintptr_t)read_fixed(r, 8); /* absolute: encodings other than absptr rarely used */
        if (loc > pc)
          return true;
        continue;
      case 0x02: loc += read_fixed(r, 1) * code_align; if (loc > pc) return true; continue;
      case 0x03: loc += read_fixed(r, 2) * code_align; if (loc > pc) return true; continue;
      case 0x04: loc += read_fixed(r, 4) * code_align; if (loc > pc) return true; continue;
      case 0x05: /* DW_CFA_offset_extended */
        reg = read_uleb(r);
        off = (int64_t)read_uleb(r) * data_align;
        set_offset = true;
        break;
      case 0x06: /* DW_CFA_restore_extended */
        reg = read_uleb(r);
        if (reg == REG_RBP) {
          row->rbp_how = init->rbp_how;
          row->rbp_offset = init->rbp_offset;
        } else if (reg == REG_RA) {
          row->ra_how = init->ra_how;
          row->ra_offset = init->ra_offset;
        }
        continue;
      case 0x07: reg = read_uleb(r); set_undefined = true; break; /* DW_CFA_undefined */
      case 0x08: reg = read_uleb(r); set_same = true; break;      /* DW_CFA_same_value */
      case 0x09: reg = read_uleb(r); (void)read_uleb(r); set_unsupported = true; break;
      case 0x0a: /* DW_CFA_remember_state */
        if (depth == STATE_STACK)
          return false;
        stack[depth++] = *row;
        continue;
      case 0x0b: /* DW_CFA_restore_state */
        if (depth == 0)
          return false;
        *row = stack[--depth];
        continue;
      case 0x0c: /* DW_CFA_def_cfa */
        row->cfa_reg = (int)read_uleb(r);
        row->cfa_offset = (int64_t)read_uleb(r);
        row->cfa_unsupported = false;
        continue;
      case 0x0d: row->cfa_reg = (int)read_uleb(r); continue;        /* DW_CFA_def_cfa_register */
      case 0x0e: row->cfa_offset = (int64_t)read_uleb(r); continue; /* DW_CFA_def_cfa_offset */
      case 0x0f: {                                                  /* DW_CFA_def_cfa_expression */
        uint64_t len = read_uleb(r);
        r->p += len <= (uint64_t)(r->end - r->p) ? len : 0;
        row->cfa_unsupported = true;
        continue;
      }
      case 0x10: case 0x16: { /* DW_CFA_expression, DW_CFA_val_expression */
        reg = read_uleb(r);
        uint64_t len = read_uleb(r);
        if (len > (uint64_t)(r->end - r->p))
          return false;
        r->p += len;
        set_unsupported = true;
        break;
      }
      case 0x11: /* DW_CFA_offset_extended_sf */
        reg = read_uleb(r);
        off = read_sleb(r) * data_align;
        set_offset = true;
        break;
      case 0x12: /* DW_CFA_def_cfa_sf */
        row->cfa_reg = (int)read_uleb(r);
        row->cfa_offset = read_sleb(r) * data_align;
        row->cfa_unsupported = false;
        continue;
      case 0x13: row->cfa_offset = read_sleb(r) * data_align; continue; /* def_cfa_offset_sf */
      case 0x14: case 0x15: /* DW_CFA_val_offset(_sf): a value, not a save slot */
        reg = read_uleb(r);
        if (op == 0x14)
          (void)read_uleb(r);
        else
          (void)read_sleb(r);
        set_unsupported = true;
        break;
      case 0x2e: (void)read_uleb(r); continue; /* DW_CFA_GNU_args_size */
      case 0x2f: /* DW_CFA_GNU_negative_offset_extended */
        reg = read_uleb(r);
        off = -(int64_t)read_uleb(r) * data_align;
        set_offset = true;
        break;
      default: return false;
      }
    }
    if (reg == REG_RBP) {
      row->rbp_how = set_offset ? 1 : (set_same || set_undefined) ? 0 : -1;
      row->rbp_offset = off;
    } else if (reg == REG_RA) {
      row->ra_how = set_offset ? 1 : set_undefined ? 2 : -1;
      row->ra_offset = off;
    } else if (reg == REG_RSP && !set_same) {
      return false; /* the stack pointer restored from memory: not the CFA */
    }
    (void)set_unsupported;
  }
  return r->ok;
}

/* Parses the CIE at cie; on success stores its fields and its initial row. */
typedef struct cie_info {
  uint64_t code_align;
  int64_t data_align;
  uint8_t fde_enc;
  bool has_z;
  reader insns;
} cie_info;

static bool parse_cie(const uint8_t *cie, const uint8_t *limit, cie_info *ci) {
  reader r = {cie, limit, true};
  uint32_t len = (uint32_t)read_fixed(&r, 4);
  if (len == 0 || len == 0xffffffffu || (size_t)(limit - cie) < (size_t)len + 4)
    return false;
  r.end = cie + 4 + len;
  if ((uint32_t)read_fixed(&r, 4) != 0) /* a CIE's id */
    return false;
  uint8_t version = read_u8(&r);
  if (version != 1 && version != 3 && version != 4)
    return false;
  const char *aug = (const char *)r.p;
  size_t aug_len = strnlen(aug, (size_t)(r.end - r.p));
  r.p += aug_len + 1;
  if (version == 4) {
    (void)read_u8(&r); /* address size */
    (void)read_u8(&r); /* segment size */
  }
  ci->code_align = read_uleb(&r);
  ci->data_align = read_sleb(&r);
  uint64_t ra_reg = version == 1 ? read_u8(&r) : read_uleb(&r);
  if (ra_reg != REG_RA)
    return false;
  ci->fde_enc = DW_EH_PE_absptr;
  ci->has_z = aug[0] == 'z';
  if (ci->has_z) {
    uint64_t zlen = read_uleb(&r);
    const uint8_t *after = r.p + zlen;
    if (zlen > (uint64_t)(r.end - r.p))
      return false;
    for (size_t i = 1; i < aug_len && r.ok; i++) {
      switch (aug[i]) {
      case 'R': ci->fde_enc = read_u8(&r); break;
      case 'L': (void)read_u8(&r); break;
      case 'P': {
        uint8_t penc = read_u8(&r);
        (void)read_encoded(&r, penc & 0x7f, 0); /* indirect or not, only skipped */
        break;
      }
      case 'S': return false; /* a signal frame */
      default: return false;
      }
    }
    r.p = after;
  } else if (aug_len != 0) {
    return false;
  }
  ci->insns = r;
  return r.ok;
}

/* The rule for pc, from the FDE that covers it. */
static tm__frame_rule rule_from_fde(const uint8_t *fde, const uint8_t *eh_frame_end, uintptr_t pc) {
  tm__frame_rule none = {.kind = TM_RULE_UNSUPPORTED};
  reader r = {fde, eh_frame_end, true};
  uint32_t len = (uint32_t)read_fixed(&r, 4);
  if (!r.ok || len == 0 || len == 0xffffffffu || (size_t)(eh_frame_end - fde) < (size_t)len + 4)
    return none;
  r.end = fde + 4 + len;
  const uint8_t *id_at = r.p;
  uint32_t cie_off = (uint32_t)read_fixed(&r, 4);
  if (!r.ok || cie_off == 0)
    return none;
  cie_info ci;
  if (!parse_cie(id_at - cie_off, eh_frame_end, &ci))
    return none;
  uintptr_t begin = read_encoded(&r, ci.fde_enc, 0);
  uintptr_t range = read_encoded(&r, ci.fde_enc & 0x0f, 0);
  if (!r.ok || pc < begin || pc - begin >= range)
    return none;
  if (ci.has_z) {
    uint64_t zlen = read_uleb(&r);
    if (zlen > (uint64_t)(r.end - r.p))
      return none;
    r.p += zlen;
  }
  cfa_row row = {.cfa_reg = -1, .ra_how = -1};
  if (!run_cfa(&ci.insns, begin, (uintptr_t)-1, ci.code_align, ci.data_align, &row, &row))
    return none;
  cfa_row init = row;
  if (!run_cfa(&r, begin, pc, ci.code_align, ci.data_align, &row, &init))
    return none;
  if (row.ra_how == 2)
    return (tm__frame_rule){.kind = TM_RULE_LAST};
  if (row.cfa_unsupported || (row.cfa_reg != REG_RSP && row.cfa_reg != REG_RBP) ||
      row.ra_how != 1 || row.ra_offset != -8 || row.rbp_how < 0 || row.cfa_offset < 8 ||
      row.cfa_offset > INT32_MAX ||
      (row.rbp_how == 1 && (row.rbp_offset < INT16_MIN || row.rbp_offset > -16)))
    return none;
  return (tm__frame_rule){.kind = TM_RULE_STEP,
                          .cfa_rbp = row.cfa_reg == REG_RBP,
                          .rbp_saved = row.rbp_how == 1,
                          .rbp_offset = (int16_t)row.rbp_offset,
                          .cfa_offset = (int32_t)row.cfa_offset};
}

tm__frame_rule tm__frame_rule_compute(uintptr_t ip) {
  tm__frame_rule none = {.kind = TM_RULE_UNSUPPORTED};
#if defined(__x86_64__)
  uintptr_t pc = ip - 1; /* inside the call instruction */
  module_query q = {.ip = pc};
  dl_iterate_phdr(find_module, &q);
  if (!q.found || q.eh_frame_hdr == NULL)
    return none;
  const uint8_t *hdr = q.eh_frame_hdr;
  /* version, eh_frame_ptr_enc, fde_count_enc, table_enc; no bound is known for the header, but
   * the loader mapped it whole. */
  reader r = {hdr, hdr + 4096, true};
  if (read_u8(&r) != 1)
    return none;
  uint8_t ptr_enc = read_u8(&r), count_enc = read_u8(&r), table_enc = read_u8(&r);
  uintptr_t eh_frame = read_encoded(&r, ptr_enc, (uintptr_t)hdr);
  uintptr_t count = read_encoded(&r, count_enc, (uintptr_t)hdr);
  if (!r.ok || table_enc != (DW_EH_PE_datarel | DW_EH_PE_sdata4) || count == 0 || eh_frame == 0)
    return none;
  const int32_t *table = (const int32_t *)r.p;
  /* Last entry whose initial location is <= pc. */
  size_t lo = 0, hi = count;
  intptr_t target = (intptr_t)(pc - (uintptr_t)hdr);
  if ((intptr_t)table[0] > target)
    return none;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if ((intptr_t)table[2 * mid] <= target)
      lo = mid;
    else
      hi = mid;
  }
  const uint8_t *fde = hdr + table[2 * lo + 1];
  /* .eh_frame's end is not in the header; an FDE's length is checked against a generous bound. */
  return rule_from_fde(fde, fde + (1u << 20), pc);
#else
  (void)ip;
  return none;
#endif
}

/* ---- the cache ------------------------------------------------------------------------------- */

_Atomic(tm__rule_slot *) tm__rule_table;

static uint64_t rule_pack(tm__frame_rule r) {
  return (uint64_t)r.kind | (uint64_t)r.cfa_rbp << 2 | (uint64_t)r.rbp_saved << 3 | 1u << 4 |
         (uint64_t)(uint16_t)r.rbp_offset << 16 | (uint64_t)(uint32_t)r.cfa_offset << 32;
}

static tm__rule_slot *table_get(void) {
  tm__rule_slot *t = atomic_load_explicit(&tm__rule_table, memory_order_acquire);
  if (t == NULL) {
    tm__rule_slot *fresh = tm__map(TM_RULES * sizeof *fresh);
    if (fresh == NULL)
      return NULL;
    if (atomic_compare_exchange_strong(&tm__rule_table, &t, fresh))
      t = fresh;
    else
      tm__unmap(fresh, TM_RULES * sizeof *fresh);
  }
  return t;
}

__thread unsigned tm__frame_rules_computed __attribute__((tls_model("initial-exec")));

tm__frame_rule tm__frame_rule_miss(uintptr_t ip) {
  tm__frame_rules_computed++;
  tm__frame_rule rule = tm__frame_rule_compute(ip);
  tm__rule_slot *t = table_get();
  if (t == NULL)
    return rule;
  size_t i = tm__rule_home(ip);
  for (int k = 0; k < TM_RULE_PROBES; k++, i = (i + 1) & (TM_RULES - 1)) {
    uintptr_t expected = 0;
    if (atomic_compare_exchange_strong(&t[i].ip, &expected, ip)) {
      atomic_store_explicit(&t[i].packed, rule_pack(rule), memory_order_release);
      break;
    }
    if (expected == ip)
      break; /* another thread's */
  }
  return rule;
}

void tm__frame_rules_forget(uintptr_t lo, uintptr_t hi) {
  tm__rule_slot *t = atomic_load_explicit(&tm__rule_table, memory_order_acquire);
  if (t == NULL)
    return;
  for (size_t i = 0; i < TM_RULES; i++) {
    uintptr_t ip = atomic_load_explicit(&t[i].ip, memory_order_relaxed);
    /* ip - 1: the rule is of the call instruction before the return address. */
    if (ip <= TM_RULE_FORGOTTEN || ip - 1 < lo || ip - 1 >= hi)
      continue;
    /* The rule first: a reader that saw ip here then reads 0 (a miss) or ip's own rule. Stays
     * taken (never 0 again), so that no other address's rule can appear under ip. */
    atomic_store_explicit(&t[i].packed, 0, memory_order_release);
    atomic_store_explicit(&t[i].ip, TM_RULE_FORGOTTEN, memory_order_release);
  }
}
