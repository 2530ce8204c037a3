import { ProtocolError } from '../lib/errors';

/**
 * One element of a parsed XML document: its local name (the namespace
 * prefix dropped), its direct text (entities decoded) and its child elements.
 * Attributes are skipped: S3 answers carry nothing we need in them.
 *
 * @internal
 * @example
 * ```ts
 * const root: XmlElement = parseXml('<a><b>1</b></a>');
 * root.children[0]?.name; // 'b'
 * ```
 */
export interface XmlElement {
  /** The local name: `ETag` for both `<ETag>` and `<s3:ETag>`. */
  readonly name: string;
  /** Text directly inside the element (CDATA included), entity-decoded. */
  text: string;
  /** Child elements in document order. */
  readonly children: XmlElement[];
}

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
};

/**
 * Decodes the five predefined XML entities and numeric character
 * references; anything else is left as written rather than guessed at.
 *
 * @internal
 * @example
 * ```ts
 * decodeXmlEntities('&quot;9b2c&quot;'); // '"9b2c"'
 * ```
 */
export function decodeXmlEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, body: string) => {
    if (body.startsWith('#')) {
      const code = body[1] === 'x' ? Number.parseInt(body.slice(2), 16) : Number(body.slice(1));
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[body] ?? whole;
  });
}

/**
 * Escapes text for an XML element or attribute value.
 *
 * @internal
 * @example
 * ```ts
 * escapeXml('"9b2c"'); // '&quot;9b2c&quot;'
 * ```
 */
export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) =>
      `&${c === '&' ? 'amp' : c === '<' ? 'lt' : c === '>' ? 'gt' : c === '"' ? 'quot' : 'apos'};`,
  );
}

function malformed(reason: string, at: number): ProtocolError {
  return new ProtocolError(`malformed XML at character ${at}: ${reason}`);
}

/**
 * Parses a small XML document (an S3 response) into a tree of
 * {@link XmlElement}s. Namespace prefixes are dropped, entities and CDATA
 * decoded; the XML declaration, comments and processing instructions are
 * skipped; leading whitespace (S3 sends some to keep a slow
 * CompleteMultipartUpload alive) is allowed. Throws `ProtocolError` on
 * anything that is not one well-formed root element.
 *
 * @internal
 * @example
 * ```ts
 * const root = parseXml('<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><UploadId>abc</UploadId></InitiateMultipartUploadResult>');
 * childText(root, 'UploadId'); // 'abc'
 * ```
 */
export function parseXml(source: string): XmlElement {
  const stack: { element: XmlElement; qname: string }[] = [];
  let root: XmlElement | undefined;
  let at = 0;
  while (at < source.length) {
    const lt = source.indexOf('<', at);
    const textEnd = lt === -1 ? source.length : lt;
    if (textEnd > at) {
      const raw = source.slice(at, textEnd);
      const top = stack.at(-1);
      if (top !== undefined) top.element.text += decodeXmlEntities(raw);
      else if (raw.trim() !== '') throw malformed('text outside the root element', at);
    }
    if (lt === -1) break;
    if (source.startsWith('<!--', lt)) {
      at = skipPast(source, '-->', lt + 4, 'unterminated comment');
    } else if (source.startsWith('<![CDATA[', lt)) {
      const end = source.indexOf(']]>', lt + 9);
      if (end === -1) throw malformed('unterminated CDATA section', lt);
      const top = stack.at(-1);
      if (top === undefined) throw malformed('CDATA outside the root element', lt);
      top.element.text += source.slice(lt + 9, end);
      at = end + 3;
    } else if (source.startsWith('<?', lt)) {
      at = skipPast(source, '?>', lt + 2, 'unterminated processing instruction');
    } else if (source.startsWith('<!', lt)) {
      // A DOCTYPE with an internal subset could define entities; S3 never sends one, so refuse it.
      const end = source.indexOf('>', lt);
      if (end === -1 || source.slice(lt, end).includes('[')) {
        throw malformed('unsupported DOCTYPE', lt);
      }
      at = end + 1;
    } else if (source[lt + 1] === '/') {
      const end = source.indexOf('>', lt);
      if (end === -1) throw malformed('unterminated end tag', lt);
      const qname = source.slice(lt + 2, end).trim();
      const open = stack.pop();
      if (open === undefined || open.qname !== qname) {
        throw malformed(
          `</${qname}> does not close ${open ? `<${open.qname}>` : 'any element'}`,
          lt,
        );
      }
      if (stack.length === 0) root = open.element;
      at = end + 1;
    } else {
      const end = tagEnd(source, lt);
      let inner = source.slice(lt + 1, end);
      const selfClosing = inner.endsWith('/');
      if (selfClosing) inner = inner.slice(0, -1);
      const qname = /^[^\s/>"'=]+/.exec(inner)?.[0];
      if (qname === undefined) throw malformed('a tag without a name', lt);
      const element: XmlElement = {
        name: qname.slice(qname.indexOf(':') + 1),
        text: '',
        children: [],
      };
      const parent = stack.at(-1);
      if (parent !== undefined) parent.element.children.push(element);
      else if (root !== undefined) throw malformed('a second root element', lt);
      if (selfClosing) {
        if (parent === undefined) root = element;
      } else {
        stack.push({ element, qname });
      }
      at = end + 1;
    }
  }
  const open = stack.at(-1);
  if (open !== undefined) throw malformed(`<${open.qname}> is never closed`, source.length);
  if (root === undefined) throw malformed('no root element', 0);
  return root;
}

function skipPast(source: string, terminator: string, from: number, reason: string): number {
  const end = source.indexOf(terminator, from);
  if (end === -1) throw malformed(reason, from);
  return end + terminator.length;
}

/** Where a start tag ends, stepping over quoted attribute values that may hold `>`. */
function tagEnd(source: string, from: number): number {
  let quote: string | undefined;
  for (let i = from + 1; i < source.length; i++) {
    const c = source[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '>') {
      return i;
    }
  }
  throw malformed('unterminated start tag', from);
}

/**
 * The direct children of `element` with local name `name`.
 *
 * @internal
 * @example
 * ```ts
 * for (const part of childElements(listPartsResult, 'Part')) console.log(childText(part, 'ETag'));
 * ```
 */
export function childElements(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((child) => child.name === name);
}

/**
 * The trimmed text of the first direct child named `name`, or `undefined`
 * when there is none.
 *
 * @internal
 * @example
 * ```ts
 * childText(parseXml('<Error><Code>NoSuchUpload</Code></Error>'), 'Code'); // 'NoSuchUpload'
 * ```
 */
export function childText(element: XmlElement, name: string): string | undefined {
  return element.children.find((child) => child.name === name)?.text.trim();
}
