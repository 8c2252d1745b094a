package org.rsnetedge.core;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Python's {@code json.loads} (the strict default that {@code rsnet_edge.rsfold} uses) and {@code
 * repr()} of what it returns, so that the Java RSFOLD reader accepts and refuses exactly the headers
 * Python does and quotes values in its messages the same way.
 *
 * <p>Values: {@link #NULL} (None), {@link Boolean}, {@link BigInteger} (int), {@link Double}
 * (float, NaN and +-Infinity included: Python accepts those literals), {@link String}, {@link List},
 * {@link LinkedHashMap} (a repeated key keeps its first position and its last value, like a dict).
 * Refused like Python: trailing data, a BOM, control characters in strings, bad escapes, leading
 * zeros, an integer of more than 4300 digits (Python's int conversion limit). Nesting deeper than
 * {@link #MAX_DEPTH} is refused too (Python runs out of recursion at about the same depth, a little
 * less the deeper its own stack); the parser itself is not recursive, so no depth overflows the
 * Java stack.
 */
final class PyJson {
  /** JSON null, Python's None. */
  static final Object NULL = new Object() {
    @Override
    public String toString() {
      return "None";
    }
  };
  static final int MAX_DEPTH = 1000;
  static final int MAX_INT_DIGITS = 4300;

  /** Not valid JSON (by Python's rules). */
  static final class SyntaxError extends Exception {
    SyntaxError(int at) {
      super("invalid JSON at char " + at);
    }
  }

  private final String s;
  private int i;

  private PyJson(String s) {
    this.s = s;
  }

  /** {@code json.loads(s)}. */
  static Object parse(String s) throws SyntaxError {
    PyJson p = new PyJson(s);
    p.ws();
    Object v = p.value();
    p.ws();
    if (p.i != s.length()) throw new SyntaxError(p.i);
    return v;
  }

  // ------------------------------------------------------------------------------ parsing
  private void ws() {
    while (i < s.length()) {
      char c = s.charAt(i);
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      i++;
    }
  }

  private char peek() throws SyntaxError {
    if (i >= s.length()) throw new SyntaxError(i);
    return s.charAt(i);
  }

  @SuppressWarnings("unchecked")
  private Object value() throws SyntaxError {
    List<Object> stack = new ArrayList<Object>(); // open containers, innermost last
    List<String> keys = new ArrayList<String>(); // the pending key of each open object
    while (true) {
      Object v;
      char c = peek();
      if (c == '[' || c == '{') {
        if (stack.size() >= MAX_DEPTH) throw new SyntaxError(i);
        i++;
        ws();
        if (c == '[' && peek() == ']') {
          i++;
          v = new ArrayList<Object>();
        } else if (c == '{' && peek() == '}') {
          i++;
          v = new LinkedHashMap<String, Object>();
        } else {
          stack.add(c == '[' ? new ArrayList<Object>() : new LinkedHashMap<String, Object>());
          keys.add(c == '[' ? null : key());
          continue;
        }
      } else {
        v = scalar();
      }
      while (true) { // put v into its container; close the containers that end here
        if (stack.isEmpty()) return v;
        int top = stack.size() - 1;
        Object box = stack.get(top);
        boolean list = box instanceof List;
        if (list) ((List<Object>) box).add(v);
        else ((Map<String, Object>) box).put(keys.get(top), v);
        ws();
        char d = peek();
        i++;
        if (d == ',') {
          ws();
          if (!list) keys.set(top, key());
          break;
        }
        if (d != (list ? ']' : '}')) throw new SyntaxError(i - 1);
        stack.remove(top);
        keys.remove(top);
        v = box;
      }
    }
  }

  /** {@code "name"}, whitespace, {@code :}, whitespace. */
  private String key() throws SyntaxError {
    if (peek() != '"') throw new SyntaxError(i);
    String k = string();
    ws();
    if (peek() != ':') throw new SyntaxError(i);
    i++;
    ws();
    return k;
  }

  private Object scalar() throws SyntaxError {
    char c = peek();
    if (c == '"') return string();
    if (s.startsWith("null", i)) return literal(4, NULL);
    if (s.startsWith("true", i)) return literal(4, Boolean.TRUE);
    if (s.startsWith("false", i)) return literal(5, Boolean.FALSE);
    if (s.startsWith("NaN", i)) return literal(3, Double.NaN);
    if (s.startsWith("Infinity", i)) return literal(8, Double.POSITIVE_INFINITY);
    if (s.startsWith("-Infinity", i)) return literal(9, Double.NEGATIVE_INFINITY);
    return number();
  }

  private Object literal(int n, Object v) {
    i += n;
    return v;
  }

  private static boolean digit(char c) {
    return c >= '0' && c <= '9';
  }

  private boolean digitAt(int k) {
    return k < s.length() && digit(s.charAt(k));
  }

  /** {@code -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?}: an int unless it has a fraction or exponent. */
  private Object number() throws SyntaxError {
    int start = i;
    int k = i;
    if (k < s.length() && s.charAt(k) == '-') k++;
    if (!digitAt(k)) throw new SyntaxError(start);
    if (s.charAt(k) == '0') k++;
    else while (digitAt(k)) k++;
    int intEnd = k;
    boolean isFloat = false;
    if (k < s.length() && s.charAt(k) == '.' && digitAt(k + 1)) {
      k += 2;
      while (digitAt(k)) k++;
      isFloat = true;
    }
    if (k < s.length() && (s.charAt(k) == 'e' || s.charAt(k) == 'E')) {
      int e = k + 1;
      if (e < s.length() && (s.charAt(e) == '+' || s.charAt(e) == '-')) e++;
      if (digitAt(e)) {
        while (digitAt(e)) e++;
        k = e;
        isFloat = true;
      }
    }
    i = k;
    String text = s.substring(start, k);
    if (isFloat) return Double.parseDouble(text);
    int digits = intEnd - start - (s.charAt(start) == '-' ? 1 : 0);
    if (digits > MAX_INT_DIGITS) throw new SyntaxError(start);
    return new BigInteger(text);
  }

  private String string() throws SyntaxError {
    i++; // the opening quote
    StringBuilder sb = new StringBuilder();
    while (true) {
      if (i >= s.length()) throw new SyntaxError(i);
      char c = s.charAt(i++);
      if (c == '"') return sb.toString();
      if (c < 0x20) throw new SyntaxError(i - 1); // strict: no raw control characters
      if (c != '\\') {
        sb.append(c);
        continue;
      }
      if (i >= s.length()) throw new SyntaxError(i);
      char e = s.charAt(i++);
      switch (e) {
        case '"': sb.append('"'); break;
        case '\\': sb.append('\\'); break;
        case '/': sb.append('/'); break;
        case 'b': sb.append('\b'); break;
        case 'f': sb.append('\f'); break;
        case 'n': sb.append('\n'); break;
        case 'r': sb.append('\r'); break;
        case 't': sb.append('\t'); break;
        case 'u':
          if (i + 4 > s.length()) throw new SyntaxError(i);
          int v = 0;
          for (int k = 0; k < 4; k++) {
            char h = s.charAt(i + k);
            int x = digit(h) ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (x < 0) throw new SyntaxError(i);
            v = (v << 4) | x;
          }
          i += 4;
          sb.append((char) v); // a \\ud83d\\ude00 pair is the same two chars as Python's one code point
          break;
        default:
          throw new SyntaxError(i - 1);
      }
    }
  }

  // --------------------------------------------------------------------------------- repr
  /** Python's {@code repr()} of a parsed value. */
  static String repr(Object v) {
    StringBuilder sb = new StringBuilder();
    repr(v, sb);
    return sb.toString();
  }

  @SuppressWarnings("unchecked")
  private static void repr(Object v, StringBuilder sb) {
    if (v == null || v == NULL) {
      sb.append("None");
    } else if (v instanceof Boolean) {
      sb.append((Boolean) v ? "True" : "False");
    } else if (v instanceof Double) {
      sb.append(floatRepr((Double) v));
    } else if (v instanceof String) {
      sb.append(str((String) v));
    } else if (v instanceof List) {
      sb.append('[');
      String sep = "";
      for (Object x : (List<Object>) v) {
        sb.append(sep);
        repr(x, sb);
        sep = ", ";
      }
      sb.append(']');
    } else if (v instanceof Map) {
      sb.append('{');
      String sep = "";
      for (Map.Entry<String, Object> x : ((Map<String, Object>) v).entrySet()) {
        sb.append(sep).append(str(x.getKey())).append(": ");
        repr(x.getValue(), sb);
        sep = ", ";
      }
      sb.append('}');
    } else {
      sb.append(v); // BigInteger
    }
  }

  /** {@code repr(float)}: shortest digits; scientific below 1e-4 and from 1e16 ("1e+16"). */
  static String floatRepr(double d) {
    if (Double.isNaN(d)) return "nan";
    if (Double.isInfinite(d)) return d > 0 ? "inf" : "-inf";
    String sign = (d < 0 || (d == 0 && 1 / d < 0)) ? "-" : "";
    if (d == 0) return sign + "0.0";
    BigDecimal b = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
    String digits = b.unscaledValue().toString();
    int exp = digits.length() - 1 - b.scale();
    if (exp >= -4 && exp < 16) {
      String plain = b.toPlainString();
      return sign + (plain.indexOf('.') < 0 ? plain + ".0" : plain);
    }
    String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
    return sign + mant + "e" + (exp < 0 ? "-" : "+") + String.format(Locale.US, "%02d", Math.abs(exp));
  }

  /** {@code repr(str)}: Python's quotes and escapes (non-printable code points as \\x, \\u, \\U). */
  static String str(String s) {
    char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
    StringBuilder sb = new StringBuilder().append(q);
    for (int k = 0; k < s.length(); ) {
      int cp = s.codePointAt(k);
      k += Character.charCount(cp);
      if (cp == q || cp == '\\') sb.append('\\').append((char) cp);
      else if (cp == '\t') sb.append("\\t");
      else if (cp == '\n') sb.append("\\n");
      else if (cp == '\r') sb.append("\\r");
      else if (cp < ' ' || cp == 0x7f) sb.append(String.format(Locale.US, "\\x%02x", cp));
      else if (cp < 0x7f || printable(cp)) sb.appendCodePoint(cp);
      else if (cp <= 0xff) sb.append(String.format(Locale.US, "\\x%02x", cp));
      else if (cp <= 0xffff) sb.append(String.format(Locale.US, "\\u%04x", cp));
      else sb.append(String.format(Locale.US, "\\U%08x", cp));
    }
    return sb.append(q).toString();
  }

  /** Python's str.isprintable() for one non-ASCII code point. */
  private static boolean printable(int cp) {
    switch (Character.getType(cp)) {
      case Character.CONTROL:
      case Character.FORMAT:
      case Character.SURROGATE:
      case Character.PRIVATE_USE:
      case Character.UNASSIGNED:
      case Character.LINE_SEPARATOR:
      case Character.PARAGRAPH_SEPARATOR:
      case Character.SPACE_SEPARATOR:
        return false;
      default:
        return true;
    }
  }
}
