import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../lib/errors';
import { childElements, childText, decodeXmlEntities, escapeXml, parseXml } from './s3-xml';

describe('parseXml', () => {
  it('reads ListPartsResult with a default namespace, entity-escaped ETags and paging fields', () => {
    const root = parseXml(
      `<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker>
  <Part><PartNumber>1</PartNumber><ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag><Size>5242880</Size></Part>
  <Part><PartNumber>2</PartNumber><ETag>&#34;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&#x22;</ETag><Size>10</Size></Part>
</ListPartsResult>`,
    );
    expect(root.name).toBe('ListPartsResult');
    expect(childText(root, 'IsTruncated')).toBe('true');
    expect(childText(root, 'NextPartNumberMarker')).toBe('2');
    const parts = childElements(root, 'Part');
    expect(parts.map((p) => childText(p, 'ETag'))).toEqual([
      '"7778aef83f66abc1fa1e8477f296d394"',
      '"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"',
    ]);
    expect(parts.map((p) => childText(p, 'Size'))).toEqual(['5242880', '10']);
  });

  it('drops namespace prefixes, skips comments, attributes holding ">" and self-closing tags', () => {
    const root = parseXml(
      `<s3:Error xmlns:s3="urn:x" note="a > b"><!-- a <Code>Fake</Code> in a comment -->` +
        `<s3:Code>SlowDown</s3:Code><Empty/><s3:Message><![CDATA[Reduce <your> rate]]> &amp; retry</s3:Message></s3:Error>`,
    );
    expect(root.name).toBe('Error');
    expect(childText(root, 'Code')).toBe('SlowDown');
    expect(childText(root, 'Message')).toBe('Reduce <your> rate & retry');
    expect(childText(root, 'Empty')).toBe('');
    expect(childText(root, 'Missing')).toBeUndefined();
  });

  it('accepts the whitespace S3 sends before a late CompleteMultipartUpload answer', () => {
    const root = parseXml(
      '   \n  <CompleteMultipartUploadResult><ETag>"x-2"</ETag></CompleteMultipartUploadResult>\n',
    );
    expect(childText(root, 'ETag')).toBe('"x-2"');
  });

  it.each([
    ['', /no root element/],
    ['<a><b></a>', /does not close/],
    ['<a>', /never closed/],
    ['<a></a><b></b>', /second root/],
    ['text<a/>', /outside the root/],
    ['<a', /unterminated start tag/],
    ['<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', /DOCTYPE/],
    ['<html><body>502 Bad Gateway</body>', /never closed/],
  ])('refuses malformed input %j with a ProtocolError', (text, reason) => {
    expect(() => parseXml(text)).toThrow(ProtocolError);
    expect(() => parseXml(text)).toThrow(reason);
  });
});

describe('XML text', () => {
  it('decodes the predefined entities and character references, leaving unknown ones as written', () => {
    expect(decodeXmlEntities('&lt;&gt;&amp;&quot;&apos;&#233;&#x1F600;&nbsp;&#0;')).toBe(
      `<>&"'é😀&nbsp;&#0;`,
    );
  });

  it('escapes what the part list could carry, and round-trips through the parser', () => {
    const etag = `"a&b<c>'d"`;
    expect(escapeXml(etag)).toBe('&quot;a&amp;b&lt;c&gt;&apos;d&quot;');
    expect(childText(parseXml(`<Part><ETag>${escapeXml(etag)}</ETag></Part>`), 'ETag')).toBe(etag);
  });
});
