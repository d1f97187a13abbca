<?xml version="1.0" encoding="UTF-8"?>
<!--
  payloadhook: list the payloads an OVF carries, one line per file, never content.

    xsltproc /usr/share/payloadhook/ovf-payloads.xsl appliance.ovf

  Output (tab-separated): device, target, volume id, size, SHA-256, path, and
  "content" or "no-content" for whether the OVF carries the file's bytes.
  Works on any OVF dialect: elements are matched by local name (oVirt's are
  unqualified, VMware-style OVFs put them in the envelope's namespace), payload
  items by SpecParams/vmPayload (see README.md, "OVF").
-->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="UTF-8"/>

  <xsl:template match="/">
    <xsl:for-each select="//*[local-name()='Item']/*[local-name()='SpecParams']/*[local-name()='vmPayload']/*[local-name()='file']">
      <xsl:value-of select="../../../*[local-name()='Device']"/>
      <xsl:text>&#9;</xsl:text>
      <xsl:value-of select="../*[local-name()='target']"/>
      <xsl:text>&#9;</xsl:text>
      <xsl:value-of select="../*[local-name()='volId']"/>
      <xsl:text>&#9;</xsl:text>
      <xsl:value-of select="*[local-name()='size']"/>
      <xsl:text>&#9;</xsl:text>
      <xsl:value-of select="*[local-name()='sha256']"/>
      <xsl:text>&#9;</xsl:text>
      <xsl:value-of select="*[local-name()='path']"/>
      <xsl:text>&#9;</xsl:text>
      <xsl:choose>
        <xsl:when test="*[local-name()='content']">content</xsl:when>
        <xsl:otherwise>no-content</xsl:otherwise>
      </xsl:choose>
      <xsl:text>&#10;</xsl:text>
    </xsl:for-each>
  </xsl:template>
</xsl:stylesheet>
